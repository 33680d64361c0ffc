"""Importing TensorFlow from the command line without its start-up chatter on stderr.

TensorFlow's C++ start-up messages (no CUDA driver, CPU features) are written before its
log level can be set; the command line's users did not write that code and cannot act on
them, so ``lossboard demo`` and ``lossboard aggregate`` hide them.
"""

from __future__ import annotations

import os
import sys


def import_tensorflow_quietly() -> None:
    """Imports TensorFlow and starts its eager context with stderr (fd 2) silenced.

    Errors still reach the caller: an ImportError is raised after stderr is restored.

    Examples:
        >>> import_tensorflow_quietly()
        >>> "tensorflow" in sys.modules
        True
    """
    if "tensorflow" in sys.modules:
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            import tensorflow as tf

            tf.constant(0)  # the CUDA probe runs when the eager context starts
    finally:
        os.dup2(saved, 2)
        os.close(saved)
