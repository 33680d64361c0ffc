"""lossboard's warnings: one category to filter on, attributed to the user's line.

Every warning lossboard gives is a :class:`LossboardWarning`, so
``warnings.filterwarnings("error", category=lossboard.LossboardWarning)`` (or pytest's
``filterwarnings = ["error::lossboard.LossboardWarning"]``) turns them all into errors.
:func:`warn` reports the first frame outside lossboard, Keras and TensorFlow: the user's own
call (their ``on_epoch_end``, or their ``model.fit`` when Keras drives the logger), never a
library frame, whatever the depth of the call inside lossboard.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import warnings
from collections.abc import Iterator
from types import FrameType

#: Frames in these folders are library frames: a warning names the first frame outside them.
_LIBRARY_DIRS: tuple[str, ...] = (os.path.dirname(os.path.abspath(__file__)) + os.sep,)
_LIBRARY_PACKAGES = ("keras", "tf_keras", "tensorflow", "tensorboard")
_CONTEXTLIB = contextlib.__file__


class LossboardWarning(UserWarning):
    """The base of every warning lossboard gives: a value was written with a caveat, or not.

    Examples:
        >>> import warnings
        >>> import lossboard
        >>> warnings.simplefilter("error", lossboard.LossboardWarning)  # doctest: +SKIP
    """


class LossboardRuntimeWarning(LossboardWarning, RuntimeWarning):
    """A warning about the data (a NaN, an overflow, a file removed): also a ``RuntimeWarning``."""


def _library_dirs() -> tuple[str, ...]:
    found = list(_LIBRARY_DIRS)
    for name in _LIBRARY_PACKAGES:
        module = sys.modules.get(name)
        path = getattr(module, "__file__", None)
        if path:
            found.append(os.path.dirname(os.path.abspath(path)) + os.sep)
    return tuple(found)


def stacklevel() -> int:
    """The ``stacklevel`` that names the caller of lossboard (as seen from :func:`warn`)."""
    library = _library_dirs()
    frame: FrameType | None = sys._getframe(2)  # the frame that called warn()
    level = 2
    while frame is not None and (
        os.path.abspath(frame.f_code.co_filename).startswith(library)
        or frame.f_code.co_filename == _CONTEXTLIB  # held()'s exit, in a ``with`` of ours
    ):
        frame = frame.f_back
        level += 1
    return level if frame is not None else 2


_HELD = threading.local()


def warn(message: str, category: type[Warning] = LossboardWarning) -> None:
    """Warns with ``message``, attributed to the first frame outside lossboard and Keras.

    Inside :func:`held`, the warning waits until the block has finished.
    """
    if not issubclass(category, LossboardWarning):
        raise TypeError(f"category: got {category!r}; expected a LossboardWarning subclass.")
    waiting = getattr(_HELD, "messages", None)
    if waiting is not None:
        waiting.append((message, category))
        return
    warnings.warn(message, category, stacklevel=stacklevel())


@contextlib.contextmanager
def held() -> Iterator[None]:
    """Holds the warnings of the block until it has finished, then gives them.

    A warning filter set to ``"error"`` turns a warning into an exception: raised in the middle
    of an epoch end it would leave the epoch unwritten and its state unreset, so every later
    epoch would raise again. Given after the block, it raises once everything is on disk.
    """
    outer = getattr(_HELD, "messages", None)
    if outer is not None:  # nested: the outermost block gives them
        yield
        return
    _HELD.messages = []
    try:
        yield
    except BaseException:
        # The block's own error comes first: a warning that a filter makes an error must not
        # replace it (the warnings are still given where filters let them through).
        waiting, _HELD.messages = _HELD.messages, None
        for message, category in waiting:
            with contextlib.suppress(Exception):
                warn(message, category)
        raise
    waiting, _HELD.messages = _HELD.messages, None
    for message, category in waiting:
        warn(message, category)
