"""Keras 3 on TensorFlow's backend: the only Keras backend the logger runs on.

Keras 3 picks its backend at its first import, from ``KERAS_BACKEND`` or the ``"backend"`` of
``keras.json``. Set to ``jax``, ``torch`` or ``numpy``, ``import keras`` fails inside Keras
("No module named 'jax'") when that framework is not installed, and when it is, Keras'
callbacks and variables are not TensorFlow's. :func:`import_keras` says which setting is the
cause and how to change it, in both cases.

The logger's modules import ``keras`` from here (``from lossboard.logger.keras_backend import
keras``), so the check runs before Keras is first imported.
"""

from __future__ import annotations

import json
import os
from types import ModuleType
from typing import TYPE_CHECKING

TENSORFLOW = "tensorflow"


def _config_file() -> str:
    """Keras' ``keras.json``: under ``KERAS_HOME``, else ``~/.keras`` (as Keras looks)."""
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    return os.path.join(home, "keras.json")


def configured_backend() -> tuple[str, str]:
    """The backend Keras is told to use, and where that is said.

    Examples:
        >>> backend, source = configured_backend()  # doctest: +SKIP
        >>> backend, source  # doctest: +SKIP
        ('jax', "KERAS_BACKEND='jax' in the environment")
    """
    backend = os.environ.get("KERAS_BACKEND")
    if backend:
        return backend, f"KERAS_BACKEND={backend!r} in the environment"
    path = _config_file()
    try:
        with open(path, encoding="utf-8") as f:
            backend = json.load(f).get("backend")
    except (OSError, ValueError, AttributeError):
        backend = None
    if isinstance(backend, str) and backend:
        return backend, f'"backend": "{backend}" in {path}'
    return TENSORFLOW, "Keras' default"


def _error(backend: str, source: str, cause: str) -> ImportError:
    fix = (
        f'set "backend": "{TENSORFLOW}" in that file'
        if source.startswith('"backend"')
        else f"set KERAS_BACKEND={TENSORFLOW} (or unset it)"
    )
    return ImportError(
        f"lossboard's LossLogger runs on TensorFlow and needs Keras' {TENSORFLOW!r} backend, "
        f"but Keras is set to the {backend!r} backend ({source}){cause}. To fix it, {fix} "
        "before Python starts (before the first `import keras`), for example "
        f"`KERAS_BACKEND={TENSORFLOW} python train.py`."
    )


def import_keras() -> ModuleType:
    """``keras``, after checking that its backend is TensorFlow's.

    Raises:
        ImportError: When Keras is set to another backend (whether or not that backend's
            package is installed), naming the setting and how to change it.
    """
    try:
        import keras
    except (ImportError, ValueError) as err:  # ValueError: an unknown backend's name
        backend, source = configured_backend()
        if backend == TENSORFLOW:
            raise
        raise _error(backend, source, f", and importing Keras failed ({err})") from err
    backend = keras.backend.backend()
    if backend != TENSORFLOW:
        configured, source = configured_backend()
        if configured != backend:  # the setting changed after Keras was imported
            source = "as set when Keras was first imported in this process"
        raise _error(backend, source, "")
    return keras


if TYPE_CHECKING:
    import keras
else:
    keras = import_keras()
