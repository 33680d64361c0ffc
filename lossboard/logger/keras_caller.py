"""Which Keras method drives a callback: ``fit``, a standalone ``evaluate``, or the user's loop.

Keras calls ``on_train_begin`` from ``fit`` and ``on_test_begin`` from ``evaluate``, but a user
who drives ``keras.callbacks.CallbackList(..., model=model)`` by hand in a custom loop calls the
same methods, with a model set too (a ``Model`` subclass may even do it in its own ``fit``).

The rule: the logger is driven by Keras when **Keras' own** ``fit`` (or ``evaluate``) of that
model is running: a frame on the stack whose code object *is* the code of Keras' method (Keras 3
and ``tf_keras``), with that model as ``self``. A method of another class that happens to be
named ``fit`` is not Keras' ``fit``. The stack is searched once per ``on_*_begin``; while
``fit`` drives the logger, each batch call checks only the few frames between it and ``fit``'s
loop (a ``fit`` that ended without ``on_train_end``, after an exception or Ctrl-C, is noticed
when its frame is gone).
"""

from __future__ import annotations

import inspect
import sys
from types import CodeType, FrameType
from typing import Any, NamedTuple

FIT, EVALUATE = "fit", "evaluate"
#: Frames between a batch call and ``fit``'s loop: CallbackList, Keras' step hooks, the logger.
_NEAR = 12


def keras_methods() -> dict[CodeType, str]:
    """The code objects of Keras' own ``fit`` and ``evaluate`` (decorators unwrapped), of
    Keras 3 and of ``tf_keras`` when it is loaded."""
    found: dict[CodeType, str] = {}
    classes = []
    for name, attribute in (("keras", "Model"), ("tf_keras", "Model")):
        module = sys.modules.get(name)
        model = getattr(module, attribute, None) if module is not None else None
        if isinstance(model, type):
            classes += [c for c in model.__mro__ if c.__module__.startswith(name)]
    for cls in classes:
        for method in (FIT, EVALUATE):
            function = vars(cls).get(method)
            code = getattr(inspect.unwrap(function), "__code__", None) if function else None
            if code is not None:
                found[code] = method
    return found


class KerasCall(NamedTuple):
    """A running ``fit`` or ``evaluate`` of a model."""

    method: str
    frame_id: int
    code: CodeType

    def running(self) -> bool:
        """Whether this call is still on the current thread's stack.

        Fast path: the frames nearest the caller (where ``fit``'s loop calls its callbacks)
        are looked at first; the whole stack only when the call is not among them.
        """
        frame = _caller_frames()
        depth = 0
        while frame is not None:
            if id(frame) == self.frame_id and frame.f_code is self.code:
                return True
            frame, depth = frame.f_back, depth + 1
            if depth == _NEAR:  # not where fit calls its callbacks: is it anywhere?
                return self._anywhere(frame)
        return False

    def _anywhere(self, frame: FrameType | None) -> bool:
        while frame is not None:
            if id(frame) == self.frame_id and frame.f_code is self.code:
                return True
            frame = frame.f_back
        return False


def _caller_frames() -> FrameType | None:
    frame = inspect.currentframe()
    return frame.f_back if frame is not None else None


def find(model: Any) -> KerasCall | None:
    """The running Keras ``fit`` of ``model`` (or, without one, its ``evaluate``), if any.

    ``evaluate`` inside ``fit`` (the validation pass) counts as ``fit``.
    """
    if model is None:
        return None
    methods = keras_methods()
    found = None
    frame = _caller_frames()
    while frame is not None:
        method = methods.get(frame.f_code)
        if method is not None and frame.f_locals.get("self") is model:
            found = KerasCall(method, id(frame), frame.f_code)
            if method == FIT:
                return found
        frame = frame.f_back
    return found


def fit_running() -> bool:
    """Whether any model's Keras ``fit`` is running on this thread."""
    methods = keras_methods()
    frame = _caller_frames()
    while frame is not None:
        if methods.get(frame.f_code) == FIT:
            return True
        frame = frame.f_back
    return False
