"""lossboard: exact epoch averages of every loss component, in TensorBoard, from two calls.

Examples:
    >>> from lossboard import LossLogger
    >>> logger = LossLogger("logs/doc-init")
    >>> logger.on_train_batch_end(0, {"loss": 1.0, "kl": 0.5})
    >>> logger.on_epoch_end(0)
    {'loss': 1.0, 'kl': 0.5}
    >>> logger.close()

TensorFlow is imported only when a name that needs it is first used, so the
``lossboard`` command line (which reads event files) starts quickly.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# public name -> module that defines it
_EXPORTS = {
    "LossLogger": "lossboard.logger.loss_logger",
    "ComponentMean": "lossboard.accumulate.component_mean",
    "load": "lossboard.reader.read",
    "new_run_dir": "lossboard.run_dirs",
    "compare_groups": "lossboard.compare.config_table",
    "EventFileWarning": "lossboard.reader.read",
    "LossboardWarning": "lossboard.warn",
}

__all__ = ["__version__", *_EXPORTS]

if TYPE_CHECKING:  # pragma: no cover
    from lossboard.accumulate.component_mean import ComponentMean  # noqa: F401
    from lossboard.compare.config_table import compare_groups  # noqa: F401
    from lossboard.logger.loss_logger import LossLogger  # noqa: F401
    from lossboard.reader.read import (
        EventFileWarning,  # noqa: F401
        load,  # noqa: F401
    )
    from lossboard.run_dirs import new_run_dir  # noqa: F401
    from lossboard.warn import LossboardWarning  # noqa: F401


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'lossboard' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
