"""Updates written into the user's compiled step: a few ops per call, any component count.

An in-graph call adds its components' weighted sums, weight totals and
non-finite flags to three float64 vector variables of one split (index =
component). Scalar unweighted components, the common case, are handled with
one ``Pack`` for all of them. Reading a result drains the vectors into the
components' ``ComponentMean`` (eagerly).

The variables are created eagerly with the logger (and under the
``tf.distribute`` strategy in scope then, as sum-on-read variables), so no
variable is created while a ``tf.function`` is traced: a component may first
appear in any trace.
"""

from __future__ import annotations

from typing import Any

import tensorflow as tf

from lossboard.distribute import updates_go_to_primary
from lossboard.sums import Sums

_F64 = tf.float64


class GraphSums:
    """Three ``[capacity]`` float64 vectors that in-graph updates add to.

    Args:
        capacity: How many components the vectors hold.
    """

    def __init__(self, capacity: int):
        self.capacity = capacity
        self.used = False

        def var(name: str) -> tf.Variable:
            return tf.Variable(
                tf.zeros([capacity], _F64),
                trainable=False,
                name=name,
                synchronization=tf.VariableSynchronization.ON_READ,
                aggregation=tf.VariableAggregation.SUM,
            )

        with tf.init_scope():
            self._vars = (var("sums"), var("counts"), var("nonfinite"))

    def update(
        self, comps: list[int], staged: list[tuple], skip: bool, scalar_weight: Any = None
    ) -> tuple[Sums, tf.Tensor]:
        """Adds one batch (in the graph being traced); returns what it added, and where.

        Args:
            comps: Component index of each staged value (all < capacity).
            staged: ``(values, weights or None)`` per component, rank <= 1.
            skip: Leave out components whose values (or weights) are not all finite.
            scalar_weight: The weight of every unweighted scalar (``batch_size``).
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
            all_finite = tf.logical_and(
                tf.reduce_all(tf.math.is_finite(values)), tf.reduce_all(tf.math.is_finite(weights))
            )
            finite.append(tf.reshape(all_finite, [1]))
        join = (lambda xs: xs[0]) if len(sums) == 1 else (lambda xs: tf.concat(xs, 0))
        sums_v, counts_v, finite_v = join(sums), join(counts), join(finite)
        if skip:
            sums_v = tf.where(finite_v, sums_v, tf.zeros_like(sums_v))
            counts_v = tf.where(finite_v, counts_v, tf.zeros_like(counts_v))
        bad_v = 1.0 - tf.cast(finite_v, _F64)
        index = tf.constant([[comps[i]] for i in order], tf.int32)
        added = Sums(sums_v, counts_v, bad_v)
        self.add(added, index)
        return added, index

    def read_and_zero(self) -> tuple[tf.Tensor, tf.Tensor]:
        """In a graph: the sums and counts so far, then zeroes all three vectors."""
        sums, counts = tf.identity(self._vars[0]), tf.identity(self._vars[1])
        with tf.control_dependencies([sums, counts]):
            for v in self._vars:
                v.assign(tf.zeros_like(v))
        return sums, counts

    def add(self, vectors: Sums, index: Any = None) -> None:
        """Adds ``vectors`` at ``index`` (or from slot 0), once.

        Eagerly or in a graph; in a cross-replica context the add goes to the
        first local copy of each sum-on-read variable, so it counts once.
        """
        shape = tf.constant([self.capacity], tf.int32)
        for var, vec in zip(self._vars, vectors, strict=True):
            vec = tf.cast(vec, _F64)
            if index is None:
                index = tf.reshape(tf.range(tf.shape(vec)[0]), [-1, 1])
            target = var.values[0] if updates_go_to_primary(var) else var
            target.assign_add(tf.scatter_nd(index, vec, shape))
        self.used = True

    def drain(self, num_comps: int) -> Sums | None:
        """Eagerly returns the sums of the first ``num_comps`` components, and zeroes them.

        Under a strategy, reading sums every replica's copy (and every worker's).
        """
        if not self.used:
            return None
        n = min(num_comps, self.capacity)
        out = Sums(*(tf.identity(v)[:n] for v in self._vars))
        for v in self._vars:
            v.assign(tf.zeros_like(v))
        return out.padded(num_comps)
