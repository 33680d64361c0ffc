"""One component's value and weight, checked and turned into what is kept until a fold.

Everything is checked before anything is recorded, so a rejected batch leaves
no trace. Nothing here reads a tensor's value back from the device.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import tensorflow as tf

from lossboard.accumulate import inputs as batch_lib
from lossboard.accumulate import reduction, tf_private
from lossboard.accumulate.distribute import local_parts
from lossboard.accumulate.pending import (
    ENTRY_WEIGHT,
    HOST_WEIGHT,
    SUMMED_HOST,
    SUMMED_TENSOR,
    TENSOR_WEIGHT,
)
from lossboard.accumulate.sums import HostSum

_F64 = tf.float64
#: Weights that need no conversion: the common ``sample_weight=len(x)``.
FAST_WEIGHTS = (int, float)
#: Values with this many elements or more are reduced at the call to one float64
#: weighted sum (two eager ops, a few ns per element against about 150 ns per element
#: in a fold) instead of being held until a fold: per-pixel, per-token and long
#: per-example losses then cost no memory and no fold pauses (benchmark rows
#: "per-pixel", "per-token", "per-example" of benchmarks/memory.py).
LARGE = 1 << 11
_F64_ENUM = tf.float64.as_datatype_enum


class Staged(NamedTuple):
    """One checked value of one batch, ready to be recorded.

    Attributes:
        name: The component.
        key: The pending group it joins (dtype, rank, kind of weight, weight
            dtype), or None for a host value, whose ``value`` is a ``HostSum``.
        value: The values (a tensor of rank <= 1) or the ``HostSum``.
        weight: A float, a tensor of weights, or None.
        size: How many elements ``value`` holds.
        row_ok: The value may be kept in a steady-state row (see
            ``Signature``).
    """

    name: str
    key: tuple | None
    value: Any
    weight: Any
    size: int
    row_ok: bool


def stage(name: str, value: Any, weight: Any, allow_empty: bool = False) -> Staged:
    """Checks one value and its weight; records nothing.

    Raises:
        TypeError, ValueError: For a value or weight that is not accepted,
            naming the component.
    """
    what = batch_lib.label(name)
    # Fast path: an eager tensor of rank <= 1 with no weight or a number weight
    # is kept as it is (benchmark rows "eager call": the first batch of a loop).
    if tf_private.is_eager_tensor(value) and (weight is None or type(weight) in FAST_WEIGHTS):
        shape = tf_private.shape_tuple(value)
        enum = tf_private.dtype_enum(value)
        small = len(shape) == 0 or (len(shape) == 1 and 0 < shape[0] < LARGE)
        if small and enum in batch_lib.REAL_DTYPE_ENUMS:
            w = 1.0 if weight is None else float(weight)
            key = (enum, len(shape), HOST_WEIGHT, 0)
            return Staged(name, key, value, w, shape[0] if shape else 1, True)
    if not isinstance(value, tf.Tensor | tf.Variable):
        array = batch_lib.host_array(what, value)
        if not isinstance(weight, tf.Tensor | tf.Variable):
            host = HostSum(*batch_lib.host_weighted(name, array, weight))
            return Staged(name, None, host, None, 0, False)
        value = array
    value = batch_lib.as_tensor(what, value, allow_empty)
    rank = 1 if value.shape.rank else 0
    size = int(value.shape.num_elements())
    if size >= LARGE:
        return _reduced(name, value, weight, size)
    flat = tf.reshape(value, [-1]) if value.shape.rank > 1 else value
    enum = value.dtype.as_datatype_enum
    if weight is not None and not isinstance(weight, tf.Tensor | tf.Variable):
        host_w = batch_lib.host_array(batch_lib.label(name, weight=True), weight)
        if host_w.ndim == 0:
            return Staged(name, (enum, rank, HOST_WEIGHT, 0), flat, float(host_w), size, False)
        weight = host_w
    if weight is None:
        return Staged(name, (enum, rank, HOST_WEIGHT, 0), flat, 1.0, size, False)
    weight = batch_lib.as_tensor(batch_lib.label(name, weight=True), weight)
    w_enum = weight.dtype.as_datatype_enum
    if weight.shape.rank == 0:
        kind = ENTRY_WEIGHT if rank else TENSOR_WEIGHT
        return Staged(name, (enum, rank, kind, w_enum), flat, weight, size, False)
    flat, flat_w = batch_lib.flat_weighted(name, value, weight)
    return Staged(name, (enum, 1, TENSOR_WEIGHT, w_enum), flat, flat_w, size, False)


def _reduced(name: str, value: tf.Tensor, weight: Any, size: int) -> Staged:
    """A large value as its float64 weighted sum and the sum of its weights: the same
    sums as its elements, held as two scalars (``reduction.weighted_sum``). A NaN or an
    infinity among the elements (or weights) makes the sum non-finite, so the batch is
    still flagged."""
    if weight is None or not isinstance(weight, tf.Tensor | tf.Variable):
        host_w = None
        if weight is not None:
            host_w = batch_lib.host_array(batch_lib.label(name, weight=True), weight)
        if host_w is None or host_w.ndim == 0:
            # Fast path: one weight for every element: sum(v) * w, two ops without wrappers.
            w = 1.0 if host_w is None else float(host_w)
            total = tf_private.sum_f64(value)
            if w != 1.0:
                total = total * w
            return Staged(name, (_F64_ENUM, 0, SUMMED_HOST, 0), total, size * w, 1, False)
        weight = tf.constant(host_w)
    total, weights = reduction.weighted_sum(*batch_lib.flat_weighted(name, value, weight))
    return Staged(name, (_F64_ENUM, 0, SUMMED_TENSOR, _F64_ENUM), total, weights, 1, False)


def stage_replicas(name: str, parts: tuple, weight: Any, allow_empty: bool) -> list[Staged]:
    """Stages each replica's part of a ``PerReplica`` value as its own entry.

    Sums over all parts are exact whatever the shard sizes; a replica that
    got no examples (an empty part) adds nothing.
    """
    weights = local_parts(weight) or (weight,) * len(parts)
    staged = [
        stage(name, part, w, allow_empty)
        for part, w in zip(parts, weights, strict=True)
        if not (isinstance(part, tf.Tensor) and part.shape.num_elements() == 0)
    ]
    if not staged:
        raise batch_lib.bad_value(batch_lib.label(name), parts[0], "empty on every replica")
    return [s._replace(row_ok=False) for s in staged]


def stage_batch(
    logs: Any, sample_weight: Any, allow_empty: bool, batch_size: Any = None
) -> list[Staged]:
    """Stages every component of one batch (several entries for a ``PerReplica`` value)."""
    staged: list[Staged] = []
    for name, value in logs.items():
        weight = batch_lib.weight_for(name, sample_weight)
        parts = local_parts(value)
        if batch_size is not None:
            weight = batch_lib.weight_with_batch_size(name, value, weight, batch_size, parts)
        if parts is None:
            staged.append(stage(name, value, weight, allow_empty))
        else:
            staged += stage_replicas(name, parts, weight, allow_empty)
    return staged


def check_finite(staged: list[Staged]) -> None:
    """``nonfinite="raise_per_batch"``: one host read per value, before recording."""
    for s in staged:
        if s.key is None:
            finite = s.value.finite
        else:
            finite = reduction.all_finite(s.value) and (
                s.weight is None or reduction.all_finite(s.weight)
            )
        if not finite:
            raise FloatingPointError(
                f"component {s.name!r}: this batch holds a NaN or an infinity in its values or "
                "weights (nonfinite='raise_per_batch'). Nothing from this batch was recorded."
            )


def mixed_weight_note(staged: list[Staged], sample_weight: Any) -> str | None:
    """Says what a number ``sample_weight`` does to a batch mixing scalars and per-example values.

    Keras' ``Mean`` semantics weight every element by it, so if it is the batch
    size, per-example components count each example that many times while the
    scalar components are counted right: the trap ``batch_size=`` avoids.
    """
    if type(sample_weight) not in FAST_WEIGHTS or not float(sample_weight).is_integer():
        return None  # a fractional weight is a weight, not a batch size
    if sample_weight < 2:
        return None
    size = int(sample_weight)

    def elements(s: Staged) -> float:
        return s.size if s.key is not None else s.value.weight / sample_weight

    vectors = sorted({s.name for s in staged if elements(s) > 1})
    scalars = sorted({s.name for s in staged if elements(s) == 1})
    if not vectors or not scalars:
        return None
    return (
        f"sample_weight={sample_weight!r} weights every element of the per-example "
        f"component(s) {vectors} (as Keras' Mean does) and counts the scalar component(s) "
        f"{scalars} as {size} examples each. If {size} is this batch's size, pass "
        f"batch_size={size} instead: it counts each example once in both kinds."
    )
