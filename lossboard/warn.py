"""lossboard's warnings: one category to filter on, attributed to the user's line.

Every warning lossboard gives is a :class:`LossboardWarning`, so
``warnings.filterwarnings("error", category=lossboard.LossboardWarning)`` (or pytest's
``filterwarnings = ["error::lossboard.LossboardWarning"]``) turns them all into errors.
:func:`warn` reports the first frame outside lossboard, Keras and TensorFlow: the user's own
call (their ``on_epoch_end``, or their ``model.fit`` when Keras drives the logger), never a
library frame, whatever the depth of the call inside lossboard.
"""

from __future__ import annotations

import os
import sys
import warnings
from types import FrameType

#: Frames in these folders are library frames: a warning names the first frame outside them.
_LIBRARY_DIRS: tuple[str, ...] = (os.path.dirname(os.path.abspath(__file__)) + os.sep,)
_LIBRARY_PACKAGES = ("keras", "tf_keras", "tensorflow", "tensorboard")


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
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(library):
        frame = frame.f_back
        level += 1
    return level if frame is not None else 2


def warn(message: str, category: type[Warning] = LossboardWarning) -> None:
    """Warns with ``message``, attributed to the first frame outside lossboard and Keras."""
    if not issubclass(category, LossboardWarning):
        raise TypeError(f"category: got {category!r}; expected a LossboardWarning subclass.")
    warnings.warn(message, category, stacklevel=stacklevel())
