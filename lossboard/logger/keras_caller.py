"""Which Keras method drives a callback: ``fit``, a standalone ``evaluate``, or the user's loop.

Keras calls ``on_train_begin`` from ``fit`` and ``on_test_begin`` from
``evaluate``, but a user who drives ``keras.callbacks.CallbackList(...,
model=model)`` by hand in a custom loop calls the same methods, with a model
set too. What tells them apart is whether ``fit`` or ``evaluate`` of that
model is running, so lossboard looks for that frame on the call stack (once
per ``on_*_begin``), and a fit that ended without ``on_train_end`` (an
exception, Ctrl-C) is noticed when its frame is gone.
"""

from __future__ import annotations

import inspect
from types import CodeType, FrameType
from typing import Any, NamedTuple

FIT, EVALUATE = "fit", "evaluate"


class KerasCall(NamedTuple):
    """A running ``fit`` or ``evaluate`` of a model."""

    method: str
    frame_id: int
    code: CodeType

    def running(self) -> bool:
        """Whether this call is still on the current thread's stack."""
        frame = _caller_frames()
        while frame is not None:
            if id(frame) == self.frame_id and frame.f_code is self.code:
                return True
            frame = frame.f_back
        return False


def _caller_frames() -> FrameType | None:
    frame = inspect.currentframe()
    return frame.f_back if frame is not None else None


def find(model: Any) -> KerasCall | None:
    """The running ``fit`` of ``model`` (or, without one, its ``evaluate``), if any.

    ``evaluate`` inside ``fit`` (the validation pass) counts as ``fit``.
    """
    if model is None:
        return None
    found = None
    frame = _caller_frames()
    while frame is not None:
        name = frame.f_code.co_name
        if name in (FIT, EVALUATE) and frame.f_locals.get("self") is model:
            found = KerasCall(name, id(frame), frame.f_code)
            if name == FIT:
                return found
        frame = frame.f_back
    return found
