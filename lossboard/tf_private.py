"""Every use of TensorFlow's private API in lossboard, in one place, each with a guard.

The per-batch fast path reads two facts of an eager tensor without building
a ``TensorShape`` or ``DType`` object (about 0.3 us per value instead of
about 2 us; benchmark row "eager call, 64 comps"). If a TensorFlow release
renames them, the guard falls back to the public, slower equivalents, and
``tests/test_tf_private.py`` fails first so the change is seen.

Nothing here creates a tensor: importing lossboard must not start
TensorFlow's runtime (that would break GPU and multi-worker set-up).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import tensorflow as tf

try:  # the class of eager tensors: not exported by TensorFlow
    from tensorflow.python.framework.ops import EagerTensor
except ImportError:  # pragma: no cover - only on a TensorFlow that moved it
    EagerTensor = None

#: What the fast path needs, present on this TensorFlow.
HAS_FAST_PATH = EagerTensor is not None and all(
    hasattr(EagerTensor, name) for name in ("_datatype_enum", "_shape_tuple")
)


def _public_dtype_enum(value: Any) -> int:
    if not isinstance(value, tf.Tensor):
        raise TypeError("not a tensor")
    return value.dtype.as_datatype_enum


def _public_shape_tuple(value: Any) -> tuple:
    if not isinstance(value, tf.Tensor):
        raise TypeError("not a tensor")
    return tuple(value.shape)


#: ``dtype_enum(t)``: the dtype enum of an eager tensor; raises TypeError for other values.
dtype_enum: Callable[[Any], int]
#: ``shape_tuple(t)``: the static shape of an eager tensor as a tuple of ints.
shape_tuple: Callable[[Any], tuple]
if HAS_FAST_PATH:
    dtype_enum = EagerTensor._datatype_enum  # type: ignore[union-attr]
    shape_tuple = EagerTensor._shape_tuple  # type: ignore[union-attr]
else:  # pragma: no cover
    dtype_enum, shape_tuple = _public_dtype_enum, _public_shape_tuple


def is_eager_tensor(value: Any) -> bool:
    """True for a concrete eager tensor (not a symbolic one, not a variable)."""
    if EagerTensor is not None:
        return type(value) is EagerTensor
    return isinstance(value, tf.Tensor) and hasattr(value, "numpy")  # pragma: no cover


def in_xla_context() -> bool:
    """True while tracing a function compiled with XLA (``jit_compile=True``)."""
    try:
        from tensorflow.python.ops import control_flow_util

        graph = tf.compat.v1.get_default_graph()
        return bool(control_flow_util.GraphOrParentsInXlaContext(graph))
    except (ImportError, AttributeError):  # pragma: no cover - a TensorFlow that moved it
        return False
