"""Every use of TensorFlow's private API in lossboard, in one place, each with a guard.

The per-batch fast path reads two facts of an eager tensor without building
a ``TensorShape`` or ``DType`` object (about 0.3 us per value instead of
about 2 us; benchmark row "eager call, 64 comps"). If a TensorFlow release
renames them, the guard falls back to the public, slower equivalents, and
``tests/test_tf_private.py`` fails first so the change is seen. The same goes
for the few ops run without their Python wrappers (``join``, ``sum_f64``,
``column_sums``) and
for ``not_converted``.

Nothing here creates a tensor at import (only at first use): importing lossboard must not start
TensorFlow's runtime (that would break GPU and multi-worker set-up).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
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
else:  # pragma: no cover - only on a TensorFlow that renamed them
    dtype_enum, shape_tuple = _public_dtype_enum, _public_shape_tuple


try:  # the eager op call without the Python wrapper's per-input conversions
    from tensorflow.python import pywrap_tfe
    from tensorflow.python.eager import context as _context

    HAS_EXECUTE = hasattr(pywrap_tfe, "TFE_Py_Execute") and hasattr(_context, "context")
except ImportError:  # pragma: no cover - only on a TensorFlow that moved them
    HAS_EXECUTE = False

_AXIS: list[Any] = []  # the int32 0 that ConcatV2 takes as an input, made at first use


def _execute(op: str, inputs: list[Any], attrs: tuple) -> Any:
    """Runs one eager op with one output, placed as ``tf.raw_ops`` would place it."""
    ctx = _context.context()
    ctx.ensure_initialized()
    return pywrap_tfe.TFE_Py_Execute(ctx._handle, ctx.device_name, op, inputs, attrs, 1)[0]


def join(values: list[Any], rank: int, enum: int) -> Any:
    """One vector from a list of eager scalars (``rank`` 0) or vectors (``rank`` 1).

    All of dtype ``enum`` (checked by the caller). The ``Pack`` or ``ConcatV2``
    op, placed as ``tf.raw_ops`` would place it (a value's recorded device name
    can go stale when a multi-worker cluster starts), without the Python
    wrapper's per-input work: about 4 us less than ``tf.raw_ops.Pack`` at 64
    values. Keep ``len(values)`` to a few sizes: TensorFlow builds a kernel for
    each (about 25 us per input, once).
    """
    if not HAS_EXECUTE:
        op = tf.raw_ops.Pack if rank == 0 else tf.raw_ops.ConcatV2
        return op(values=values, axis=0)
    if rank == 1 and len(values) == 1:  # ConcatV2 takes two or more
        return values[0]
    if rank == 0:
        return _execute("Pack", values, ("N", len(values), "T", enum, "axis", 0))
    if not _AXIS:
        _AXIS.append(_host_constant(0))
    attrs = ("N", len(values), "T", enum, "Tidx", tf.int32.as_datatype_enum)
    return _execute("ConcatV2", values + _AXIS, attrs)


_F64_ENUM = tf.float64.as_datatype_enum
_ALL_AXES: dict[int, Any] = {}  # rank -> the int32 vector [0, 1, ..., rank - 1], made at first use


def _host_constant(value: Any) -> Any:
    with tf.init_scope(), tf.device("/CPU:0"):  # an op input kept in host memory
        return tf.constant(value, tf.int32)


def sum_f64(value: Any) -> Any:
    """The float64 sum of every element of an eager tensor, in two ops (Cast, Sum).

    ``tf.reduce_sum(tf.cast(tf.reshape(x, [-1]), tf.float64))`` is the same
    number, but its three Python wrappers cost about 0.4 ms more per call on a
    (32, 64, 64) value here (benchmark section "shapes").
    """
    if not (HAS_EXECUTE and is_eager_tensor(value)):
        return tf.reduce_sum(tf.cast(value, tf.float64))
    rank = len(shape_tuple(value))
    axes = _ALL_AXES.get(rank)
    if axes is None:
        axes = _ALL_AXES[rank] = _host_constant(list(range(rank)))
    attrs = ("keep_dims", False, "T", _F64_ENUM, "Tidx", tf.int32.as_datatype_enum)
    return _execute("Sum", [_as_f64(value), axes], attrs)


def _as_f64(value: Any) -> Any:
    """An eager tensor as float64 (one ``Cast``, none when it is already)."""
    enum = dtype_enum(value)
    if enum == _F64_ENUM:
        return value
    return _execute("Cast", [value], ("SrcT", enum, "DstT", _F64_ENUM, "Truncate", False))


#: float64 0 and 1, and the int32 0 that Sum takes as its axis, made at first use
#: (all three at once: an interrupt while they are made leaves none).
_SUM_CONSTANTS: list[tuple[Any, Any, Any]] = []


def column_sums(vector: Any, rows: int, weights: Any, skip: bool) -> tuple[Any, Any, Any] | None:
    """Weighted column sums of a ``[rows, columns]`` matrix of eager scalars, in float64.

    ``vector`` holds the matrix row by row (any real dtype); ``weights`` is a
    float64 ``[rows, 1]`` NumPy array, one weight per row. Returns per column
    the weighted sum, the weight total (None when it is simply the sum of the
    weights, left to the caller) and the number of rows that were (or whose
    weight was) a NaN or an infinity; with ``skip`` those rows add nothing.
    About eight ops run without their Python wrappers: about 0.3 ms for 16384
    values here, where the segment sums take about 1.3 ms. None without the
    private execute call: the caller then uses the segment sums.
    """
    if not (HAS_EXECUTE and is_eager_tensor(vector)):
        return None
    if not _SUM_CONSTANTS:
        with tf.init_scope():
            made = (tf.constant(0.0, tf.float64), tf.constant(1.0, tf.float64), _host_constant(0))
        _SUM_CONSTANTS.append(made)
    zero, one, axis0 = _SUM_CONSTANTS[0]
    int32 = tf.int32.as_datatype_enum
    shape = _host_constant([rows, -1])
    values = _execute("Reshape", [_as_f64(vector), shape], ("T", _F64_ENUM, "Tshape", int32))
    finite = _execute("IsFinite", [values], ("T", _F64_ENUM))
    weights_finite = np.isfinite(weights)
    if not weights_finite.all():  # a NaN or infinite row weight marks its row
        finite = _execute("LogicalAnd", [finite, tf.constant(weights_finite)], ())
    bad = _execute("SelectV2", [finite, zero, one], ("T", _F64_ENUM))
    weight = tf.constant(weights, tf.float64)
    if skip:
        values = _execute("SelectV2", [finite, values, zero], ("T", _F64_ENUM))
        weight = _execute("SelectV2", [finite, weight, zero], ("T", _F64_ENUM))
    products = _execute("Mul", [values, weight], ("T", _F64_ENUM))
    sum_attrs = ("keep_dims", False, "T", _F64_ENUM, "Tidx", int32)
    total, nonfinite = (_execute("Sum", [m, axis0], sum_attrs) for m in (products, bad))
    counts = _execute("Sum", [weight, axis0], sum_attrs) if skip else None
    return total, counts, nonfinite


def not_converted(func: Callable) -> Callable:
    """``tf.autograph.experimental.do_not_convert`` without its per-call wrapper.

    AutoGraph calls a function it finds marked as its own artifact as it is;
    marking ours saves the wrapper's 1.6 us on every batch call.
    """
    try:
        from tensorflow.python.autograph.impl import api

        marked = api.autograph_artifact(func)
        if api.is_autograph_artifact(marked) and marked is func:
            return func
    except (ImportError, AttributeError):  # pragma: no cover - a TensorFlow that moved it
        pass
    return tf.autograph.experimental.do_not_convert(func)  # pragma: no cover


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


def use_public_api(public: bool = True) -> None:
    """Binds the public equivalents of every private call (``public=False``: back again).

    What lossboard does on a TensorFlow release that moved a private name: the tests call it
    to run each fallback and check that it gives the same sums. Not for users: slower.

    Examples:
        >>> from lossboard.accumulate import tf_private
        >>> tf_private.use_public_api()
        >>> tf_private.HAS_EXECUTE, tf_private.dtype_enum is tf_private._public_dtype_enum
        (False, True)
        >>> tf_private.use_public_api(False)
    """
    names = globals()
    if public:
        names.update(
            HAS_EXECUTE=False,
            HAS_FAST_PATH=False,
            dtype_enum=_public_dtype_enum,
            shape_tuple=_public_shape_tuple,
        )
    else:
        names.update(_PRIVATE)


#: The bindings chosen at import, restored by ``use_public_api(False)``.
_PRIVATE = {
    "HAS_EXECUTE": HAS_EXECUTE,
    "HAS_FAST_PATH": HAS_FAST_PATH,
    "dtype_enum": dtype_enum,
    "shape_tuple": shape_tuple,
}
