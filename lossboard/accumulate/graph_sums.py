"""Updates written into the user's compiled step: a few ops per call, any component count.

An in-graph call adds its components' weighted sums, weight totals and
non-finite flags to one ``[capacity, 3]`` float64 variable of one split (row =
component), with one ``ResourceScatterAdd``. Scalar unweighted components, the
common case, are handled with one ``Pack`` for all of them: about seven graph
ops per call, whatever the number of components.
Reading a result drains the variable into the components' ``ComponentMean``
(eagerly).

The variable is created eagerly with the logger (and under the
``tf.distribute`` strategy in scope then, as a sum-on-read variable), so no
variable is created while a ``tf.function`` is traced: a component may first
appear in any trace.
"""

from __future__ import annotations

from typing import Any, TypeVar

import tensorflow as tf

from lossboard.accumulate.distribute import updates_go_to_primary
from lossboard.accumulate.reduction import graph_rows
from lossboard.accumulate.sums import Sums

_F64 = tf.float64
_T = TypeVar("_T")


class GraphSums:
    """A ``[capacity, 3]`` float64 variable that in-graph updates add to: per
    component (row), the ``Sums`` fields (columns). One variable, not three: each
    graph op costs a few microseconds per step, so a call runs one scatter-add
    instead of three scatters and three adds.

    Args:
        capacity: How many components the variable holds.
    """

    def __init__(self, capacity: int):
        self.capacity = capacity
        self.used = False
        with tf.init_scope():
            self._var = tf.Variable(
                tf.zeros([capacity, len(Sums._fields)], _F64),
                trainable=False,
                name="sums",
                synchronization=tf.VariableSynchronization.ON_READ,
                aggregation=tf.VariableAggregation.SUM,
            )

    def update(
        self, comps: list[int], staged: list[tuple], skip: bool, scalar_weight: Any = None
    ) -> tuple[tf.Tensor, tf.Tensor]:
        """Adds one batch (in the graph being traced); returns what it added (``[k, 3]``
        rows), and where (their components).

        Args:
            comps: Component index of each staged value (all < capacity).
            staged: ``(values, weights or None)`` per component, rank <= 1.
            skip: Leave out components whose values (or weights) are not all finite.
            scalar_weight: The weight of every unweighted scalar (``batch_size``).
        """
        rows, order = graph_rows(staged, skip, scalar_weight)
        index = tf.constant([comps[i] for i in order], tf.int32)
        self.add_rows(rows, index)
        return rows, index

    def read_and_zero(self) -> tuple[tf.Tensor, tf.Tensor]:
        """In a graph: the sums and counts so far, then zeroes the variable."""
        matrix = tf.identity(self._var)
        with tf.control_dependencies([matrix]):
            self._var.assign(tf.zeros_like(self._var))
        return matrix[:, 0], matrix[:, 1]

    def add(self, vectors: Sums) -> None:
        """Adds ``vectors`` to the first components, once (eagerly: the all-reduce)."""
        rows = tf.stack([tf.cast(v, _F64) for v in vectors], axis=1)
        self.add_rows(rows, tf.range(tf.shape(rows)[0]))

    def add_rows(self, rows: tf.Tensor, index: Any) -> None:
        """Adds ``rows`` (``[k, 3]`` float64, one per component) at components ``index``.

        One op, a ``ResourceScatterAdd``: a ``scatter_nd`` then an ``assign_add``
        cost 2-4 us more per in-graph call (16-64 components, A/B in a
        ``tf.function`` with captures). Eagerly or in a graph; in a cross-replica
        context the add goes to the first local copy of the sum-on-read
        variable, so it counts once.
        """
        target = self._var.values[0] if updates_go_to_primary(self._var) else self._var
        tf.raw_ops.ResourceScatterAdd(resource=target.handle, indices=index, updates=rows)
        self.used = True

    def read(self, num_comps: int) -> Sums | None:
        """Eagerly returns the sums of the first ``num_comps`` components (None if
        nothing was ever added); ``zero`` them once they are folded.

        Under a strategy, reading sums every replica's copy (and every worker's).
        """
        if not self.used:
            return None
        n = min(num_comps, self.capacity)
        matrix = tf.identity(self._var)[:n]
        return Sums(matrix[:, 0], matrix[:, 1], matrix[:, 2]).padded(num_comps)

    def zero_op(self) -> Any:
        """Zeroes every sum (in a graph or eagerly)."""
        return self._var.assign(tf.zeros_like(self._var))

    def zero(self, then: _T) -> _T:
        """Eagerly zeroes every sum (if any was added); returns ``then``.

        A caller whose own state holds these sums commits it on the same line
        (``self._state = graphs.zero(then=new)``): nothing of lossboard runs between
        the op and the assignment.
        """
        if not self.used:
            return then
        return (self._var.assign(tf.zeros_like(self._var)), then)[1]
