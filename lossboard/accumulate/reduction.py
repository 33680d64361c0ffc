"""The reduction contract: what every path adds to a component's ``Sums`` for one batch.

For one batch of one component, with values ``v`` and weights ``w`` (one per
element; 1 without a weight):

- the batch is *non-finite* when any value or any weight is a NaN or an infinity;
- it adds ``sum(v * w)`` to the total, ``sum(w)`` to the weight and 1 to the
  non-finite count if it is non-finite, all in float64;
- with ``skip`` (``nonfinite="skip"``) a non-finite batch adds nothing to the total
  or the weight (it is still counted);
- a batch with no elements (a replica that got no examples) adds nothing.

Every path that reduces batches does it here, or is proven equal to ``reference``
by ``tests/test_reduction.py``, which feeds the same batches through every path
(eager rows, entries, host values, large values, column sums, inside
``tf.function``, in-replica under ``MirroredStrategy``) and requires identical sums:

- ``reference``: the contract in float64 NumPy (host values use it directly);
- ``segment_sums``: many batches of many components in a dozen eager ops (a fold);
- ``weighted_sum`` (and ``tf_private.sum_f64``): one large value as its weighted sum and
  weight total (reduced at the call);
- ``graph_rows``: one batch's update inside a ``tf.function`` (``GraphSums``);
- ``all_finite``: the per-batch check of ``nonfinite="raise_per_batch"``;
- ``tf_private.column_sums``: the fold's fast path for rows of scalars (private API).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import tensorflow as tf

from lossboard.accumulate.sums import HostSum, Sums

_F64 = tf.float64


def reference(value: Any, weight: Any = None) -> HostSum:
    """One batch's contribution, in float64 NumPy: ``(sum(v * w), sum(w), finite)``.

    ``weight`` is None or broadcast against ``value`` already. An overflow is no
    error: the infinite sum is reported as non-finite when the result is read.

    Examples:
        >>> reference(np.array([1.0, 3.0]), np.array([1.0, 2.0]))
        HostSum(total=7.0, weight=3.0, finite=True)
        >>> reference(np.array([1.0, np.nan])).finite
        False
    """
    v = np.asarray(value, np.float64)
    w = np.ones_like(v) if weight is None else np.asarray(weight, np.float64)
    finite = bool(np.isfinite(v).all() and np.isfinite(w).all())  # a NaN weight is a NaN batch
    with np.errstate(all="ignore"):  # an overflow is reported when the result is read
        return HostSum(float(np.sum(v * w)), float(np.sum(w)), finite)


def segment_sums(
    values, weights, elem_entry, entry_comp, num_comps, skip_nonfinite: bool, summed: bool = False
) -> Sums:
    """Per-component weighted sums, weight totals and non-finite batch counts.

    A dozen eager ops (about 0.1 ms): a ``tf.function`` call costs about 0.4 ms
    here, more than the ops it would save.

    Args:
        values, weights: Rank-1, one element per logged element.
        elem_entry: The entry (one component of one batch) of each element.
        entry_comp: The component of each entry.
        num_comps: Length of the returned vectors.
        skip_nonfinite: Leave out entries holding a NaN or an infinity.
        summed: ``values`` are weighted sums already (large values, see ``weighted_sum``):
            they are added as they are, and ``weights`` are their weight totals.
    """
    values = tf.cast(values, _F64)
    weights = tf.cast(weights, _F64)
    num_entries = len(entry_comp)
    finite = tf.logical_and(tf.math.is_finite(values), tf.math.is_finite(weights))
    bad_elem = tf.cast(tf.logical_not(finite), _F64)
    # max over an entry with no elements (an empty shard) is the lowest float: clamp it
    bad_entry = tf.maximum(tf.math.unsorted_segment_max(bad_elem, elem_entry, num_entries), 0.0)
    if skip_nonfinite:
        keep = tf.equal(tf.gather(bad_entry, elem_entry), 0.0)
        values = tf.where(keep, values, tf.zeros_like(values))
        weights = tf.where(keep, weights, tf.zeros_like(weights))
    elem_comp = tf.gather(entry_comp, elem_entry)
    products = values if summed else values * weights
    sums = tf.math.unsorted_segment_sum(products, elem_comp, num_comps)
    counts = tf.math.unsorted_segment_sum(weights, elem_comp, num_comps)
    bad = tf.math.unsorted_segment_sum(bad_entry, entry_comp, num_comps)
    return Sums(sums, counts, bad)


def weighted_sum(values: tf.Tensor, weights: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """A large value as ``(sum(v * w), sum(w))``, two float64 scalars: the same sums as
    its elements, held until the fold as two numbers (``segment_sums(summed=True)``).

    A NaN or an infinity among the values or weights makes the sum non-finite, so
    the batch is still flagged when it is folded.
    """
    values, weights = tf.cast(values, _F64), tf.cast(weights, _F64)
    return tf.reduce_sum(values * weights), tf.reduce_sum(weights)


def graph_rows(
    staged: list[tuple], skip: bool, scalar_weight: Any = None
) -> tuple[tf.Tensor, list]:
    """One batch's ``[k, 3]`` float64 rows (total, weight, non-finite), in the graph.

    Args:
        staged: ``(values, weights or None)`` per component, rank <= 1.
        skip: Leave out components whose values (or weights) are not all finite.
        scalar_weight: The weight of every unweighted scalar (``batch_size``).

    Returns:
        The rows, and the position in ``staged`` of each row.
    """
    # Fast path: unweighted scalars, one stack per dtype, not ops per component
    # (benchmark rows "inside the compiled step": flat in the number of components).
    scalars: dict[tf.DType, list[int]] = {}
    others = []
    for i, (v, w) in enumerate(staged):
        if w is None and v.shape.rank == 0:
            scalars.setdefault(v.dtype, []).append(i)
        else:
            others.append(i)
    order, sums, counts, finite = [], [], [], []
    w = None if scalar_weight is None else tf.cast(scalar_weight, _F64)
    for group in scalars.values():
        values = tf.cast(tf.stack([staged[i][0] for i in group]), _F64)
        order += group
        if w is None:
            sums.append(values)
            counts.append(tf.ones_like(values))
            finite.append(tf.math.is_finite(values))
        else:
            # A replica with no examples in a short last batch has a NaN mean and
            # batch_size 0: it adds nothing, and is not a non-finite batch.
            empty = tf.equal(w, 0.0)
            sums.append(tf.where(empty, tf.zeros_like(values), values * w))
            counts.append(tf.fill(tf.shape(values), w))
            finite.append(
                tf.logical_or(
                    empty, tf.logical_and(tf.math.is_finite(values), tf.math.is_finite(w))
                )
            )
    for i in others:
        values, weights = staged[i]
        values = tf.cast(values, _F64)
        weights = tf.ones_like(values) if weights is None else tf.cast(weights, _F64)
        order.append(i)
        sums.append(tf.reshape(tf.reduce_sum(values * weights), [1]))
        counts.append(tf.reshape(tf.reduce_sum(weights), [1]))
        all_ok = tf.logical_and(
            tf.reduce_all(tf.math.is_finite(values)), tf.reduce_all(tf.math.is_finite(weights))
        )
        finite.append(tf.reshape(all_ok, [1]))
    join = (lambda xs: xs[0]) if len(sums) == 1 else (lambda xs: tf.concat(xs, 0))
    sums_v, counts_v, finite_v = join(sums), join(counts), join(finite)
    if skip:
        sums_v = tf.where(finite_v, sums_v, tf.zeros_like(sums_v))
        counts_v = tf.where(finite_v, counts_v, tf.zeros_like(counts_v))
    bad_v = tf.where(finite_v, tf.constant(0.0, _F64), tf.constant(1.0, _F64))  # one op
    return tf.stack([sums_v, counts_v, bad_v], axis=1), order


def all_finite(x: Any) -> bool:
    """Whether a value (or weight) holds no NaN or infinity: one host read."""
    if isinstance(x, float | int):
        return math.isfinite(x)
    return bool(tf.reduce_all(tf.math.is_finite(tf.cast(x, _F64))))
