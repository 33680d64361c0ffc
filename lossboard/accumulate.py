"""Per-component float64 running means of one split, at near-zero per-batch cost.

:class:`Accumulator` is the state behind ``LossLogger``: one
:class:`ComponentMean` per component, values pending a fold
(:mod:`lossboard.pending`), and the in-graph sums of calls made inside a
``tf.function`` (:mod:`lossboard.graph`). The per-batch path dispatches no
TensorFlow op and reads nothing back from the device; results are exact at any
time because reading one folds first.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import tensorflow as tf

from lossboard import batch as batch_lib
from lossboard.distribute import is_multi_worker, local_parts
from lossboard.graph import GraphSums
from lossboard.mean import ComponentMean
from lossboard.pending import ENTRY_WEIGHT, HOST_WEIGHT, TENSOR_WEIGHT, Pending, Signature

_F64 = tf.float64
_FAST_WEIGHTS = (int, float)
_DTYPE_ENUM = batch_lib.EagerTensor._datatype_enum
_SHAPE = batch_lib.EagerTensor._shape_tuple

#: What to do with non-finite values: see ``LossLogger(nonfinite=...)``.
NONFINITE_POLICIES = ("raise", "warn", "skip", "raise_per_batch")


def _add_parts(running: tuple | None, parts: list[tuple], num_comps: int) -> tuple[tuple, tuple]:
    """``running + sum(parts)``, each a (sums, counts, nonfinite) triple of vectors.

    Eager ops (a ``tf.function`` call costs more here than the adds). ``running``
    is zero-padded to ``num_comps`` when components were added since. Also
    returns ``sum(parts)``.
    """
    added = []
    for k in range(3):
        total = tf.convert_to_tensor(parts[0][k], _F64)
        for p in parts[1:]:
            total = total + tf.convert_to_tensor(p[k], _F64)
        added.append(total)
    if running is None:
        return tuple(added), tuple(added)
    size = int(running[0].shape[0])
    if size < num_comps:
        running = tuple(tf.pad(r, [[0, num_comps - size]]) for r in running)
    return tuple(r + a for r, a in zip(running, added, strict=True)), tuple(added)


class Accumulator:
    """Running float64 means of every component of one split (train or validation).

    Args:
        nonfinite: One of ``NONFINITE_POLICIES``; only ``"skip"`` changes what
            is summed (batches holding a NaN or infinity are left out), and
            ``"raise_per_batch"`` checks each eager batch on the host.
        fold_every: How many pending entries (one per component per batch)
            trigger a fold. Bounds memory; larger folds amortize better.
        capacity: Components the in-graph vectors hold (see
            :class:`~lossboard.graph.GraphSums`).
    """

    def __init__(
        self,
        nonfinite: str = "raise",
        fold_every: int = 16384,
        capacity: int = 128,
        strategy: tf.distribute.Strategy | None = None,
    ):
        self._strategy = strategy or tf.distribute.get_strategy()
        # Across workers, in-graph sums are read (an all-reduce) only at epoch ends,
        # which every worker reaches in step.
        self._collective = is_multi_worker(self._strategy)
        # Under a strategy a replica (or worker) may get no examples in a short last batch.
        self._allow_empty = self._strategy.num_replicas_in_sync > 1
        self._reduced = False
        self._names: list[str] = []
        self._index: dict[str, int] = {}
        self._metrics: dict[str, ComponentMean] = {}
        self._pending = Pending()
        self._fast: dict[tuple, Signature] = {}
        self._running: tuple[tf.Tensor, tf.Tensor, tf.Tensor] | None = None
        self._graph = GraphSums(capacity)
        #: Sums of in-graph calls since the last batch-curve point (see ``LossLogger``).
        self.graph_window: GraphSums | None = None
        self._fold_every = fold_every
        self._skip = nonfinite == "skip"
        self._per_batch_check = nonfinite == "raise_per_batch"
        self.window: tuple[tf.Tensor, tf.Tensor, tf.Tensor] | None = None
        self.track_window = False

    @property
    def metrics(self) -> dict[str, ComponentMean]:
        """``{name: ComponentMean}`` in order of first appearance."""
        return dict(self._metrics)

    # ----------------------------------------------------------------- eager path
    def add(
        self, logs: Mapping[str, Any], sample_weight: Any = None, keys: tuple | None = None
    ) -> None:
        """Records one eager batch. Checks everything before recording anything.

        ``keys`` is ``tuple(logs)`` when the caller has it already.
        """
        if sample_weight is None or type(sample_weight) in _FAST_WEIGHTS:
            if keys is None:
                keys = tuple(logs)
            signature = self._fast.get(keys)
            if signature is not None:
                # The steady state: same names, dtypes and shapes as an earlier batch.
                values = tuple(logs.values())
                try:
                    same = (
                        tuple(map(_DTYPE_ENUM, values)) == signature.enums
                        and tuple(map(_SHAPE, values)) == signature.shapes
                    )
                except TypeError:  # a value that is not an eager tensor
                    same = False
                if same:
                    weight = 1.0 if sample_weight is None else float(sample_weight)
                    self._pending.add_row(signature, values, weight)
                    if self._pending.count >= self._fold_every:
                        self.fold()
                    return
        staged = []
        for name, value in logs.items():
            weight = batch_lib.weight_for(name, sample_weight)
            parts = local_parts(value)
            if parts is None:
                staged.append(self._stage(name, value, weight))
            else:
                staged += self._stage_replicas(name, parts, weight)
        if self._per_batch_check:
            self._check_finite(staged)
        comps = []
        for name, key, value, weight, size, _ in staged:
            comp = self._index.get(name)
            if comp is None:
                comp = self._register(name)
            comps.append(comp)
            if key is None:
                total, count, finite = value
                self._pending.add_host(comp, total, count, finite, skip=self._skip)
            else:
                self._pending.add_entry(key, comp, value, weight, size)
        if not self._per_batch_check and len(staged) == len(logs) and all(s[5] for s in staged):
            if sample_weight is None or type(sample_weight) in _FAST_WEIGHTS:
                enums = tuple(s[2]._datatype_enum() for s in staged)
                shapes = tuple(s[2]._shape_tuple() for s in staged)
                self._fast[keys or tuple(logs)] = Signature(enums, shapes, tuple(comps))
        if self._pending.count >= self._fold_every:
            self.fold()

    def _stage(self, name: str, value: Any, weight: Any) -> tuple:
        """Checks one value and its weight; nothing is recorded yet.

        Returns ``(name, group_key, value, weight, size, row_ok)``:
        ``group_key`` is None for a host value, whose ``value`` is then
        ``(sum, count, finite)``; ``row_ok`` says the value may go in a row.
        """
        what = batch_lib.label(name)
        if type(value) is batch_lib.EagerTensor and (
            weight is None or type(weight) in _FAST_WEIGHTS
        ):
            shape = value._shape_tuple()
            enum = value._datatype_enum()
            if len(shape) <= 1 and enum in batch_lib.REAL_DTYPE_ENUMS and 0 not in shape:
                w = 1.0 if weight is None else float(weight)
                key = (enum, len(shape), HOST_WEIGHT, 0)
                return name, key, value, w, shape[0] if shape else 1, True
        if not isinstance(value, tf.Tensor | tf.Variable):
            array = batch_lib.host_array(what, value)
            if not isinstance(weight, tf.Tensor | tf.Variable):
                return name, None, batch_lib.host_weighted(name, array, weight), None, 0, False
            value = array
        value = batch_lib.as_tensor(what, value, self._allow_empty)
        rank = 1 if value.shape.rank else 0
        size = int(value.shape.num_elements())
        flat = tf.reshape(value, [-1]) if value.shape.rank > 1 else value
        enum = value.dtype.as_datatype_enum
        if weight is not None and not isinstance(weight, tf.Tensor | tf.Variable):
            host_w = batch_lib.host_array(batch_lib.label(name, weight=True), weight)
            if host_w.ndim == 0:
                return name, (enum, rank, HOST_WEIGHT, 0), flat, float(host_w), size, False
            weight = host_w
        if weight is None:
            return name, (enum, rank, HOST_WEIGHT, 0), flat, 1.0, size, False
        weight = batch_lib.as_tensor(batch_lib.label(name, weight=True), weight)
        w_enum = weight.dtype.as_datatype_enum
        if weight.shape.rank == 0:
            kind = ENTRY_WEIGHT if rank else TENSOR_WEIGHT
            return name, (enum, rank, kind, w_enum), flat, weight, size, False
        flat, flat_w = batch_lib.flat_weighted(name, value, weight)
        return name, (enum, 1, TENSOR_WEIGHT, w_enum), flat, flat_w, size, False

    def _stage_replicas(self, name: str, parts: tuple, weight: Any) -> list[tuple]:
        """Stages each replica's part of a ``PerReplica`` value as its own entry.

        Sums over all parts are exact whatever the shard sizes; a replica that
        got no examples (an empty part) adds nothing.
        """
        weights = local_parts(weight) or (weight,) * len(parts)
        staged = [
            self._stage(name, part, w)
            for part, w in zip(parts, weights, strict=True)
            if not (isinstance(part, tf.Tensor) and part.shape.num_elements() == 0)
        ]
        if not staged:
            raise batch_lib.bad_value(batch_lib.label(name), parts[0], "empty on every replica")
        return [(*entry[:5], False) for entry in staged]

    def _check_finite(self, staged: list[tuple]) -> None:
        """``nonfinite="raise_per_batch"``: one host read per value, before recording."""
        for name, key, value, *_ in staged:
            if key is None:
                finite = value[2]
            else:
                finite = bool(tf.reduce_all(tf.math.is_finite(tf.cast(value, _F64))))
            if not finite:
                raise FloatingPointError(
                    f"component {name!r}: this batch holds a NaN or an infinity "
                    "(nonfinite='raise_per_batch'). Nothing from this batch was recorded."
                )

    def fold(self) -> None:
        """Folds every pending value (and the in-graph sums) into the running sums:
        three float64 vectors (sums, weight totals, non-finite batches) per split."""
        num = len(self._names)
        parts = self._pending.take(num, self._skip) if self._pending.count else []
        drained = None if self._collective else self._drain()
        if drained is not None:
            parts.append(drained)
        if not parts:
            return
        self._running, added = _add_parts(self._running, parts, num)
        if self.track_window:
            self.window, _ = _add_parts(self.window, [added], num)

    def _drain(self) -> tuple | None:
        with self._strategy.scope():
            return self._graph.drain(len(self._names))

    def _all_reduce(self) -> None:
        """Multi-worker: sums every worker's running sums; all workers call it together."""
        self.fold()
        if self._running is not None:
            if len(self._names) > self._graph.capacity:
                raise ValueError(
                    f"{len(self._names)} components are more than the {self._graph.capacity} "
                    "lossboard sums across workers; name them: LossLogger(..., components=[...])."
                )
            with self._strategy.scope():
                self._graph.add_vectors(self._running)
        self._graph.used = True
        self._running = None
        drained = self._drain()
        if drained is not None:
            self._running, _ = _add_parts(None, [drained], len(self._names))

    def running(self) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor] | None:
        """Folds, then returns the running ``(sums, counts, nonfinite)`` vectors."""
        self.fold()
        return self._running

    # ----------------------------------------------------------------- graph path
    def add_in_graph(self, logs: Mapping[str, Any], sample_weight: Any = None) -> None:
        """Writes the update of one batch into the ``tf.function`` being traced."""
        staged, names = [], []
        for name, value in logs.items():
            weight = batch_lib.weight_for(name, sample_weight)
            parts = local_parts(value)
            weights = (local_parts(weight) or (weight,) * len(parts)) if parts else (weight,)
            for part, w in zip(parts or (value,), weights, strict=True):
                # A replica may get no examples in a short last batch: empty is fine here.
                part = batch_lib.as_tensor(batch_lib.label(name), part, allow_empty=True)
                if w is None and part.shape.rank == 0:
                    staged.append((part, None))  # the common case: stacked with the others
                else:
                    staged.append(batch_lib.flat_weighted(name, part, w))
                names.append(name)
        comps = [self._index[n] if n in self._index else self._register(n) for n in names]
        if max(comps) >= self._graph.capacity:
            raise ValueError(
                f"component {self._names[max(comps)]!r} is number {max(comps) + 1} logged inside "
                f"a tf.function, past the {self._graph.capacity} this logger sums in the graph. "
                "Name every component up front, LossLogger(..., components=[...]): the "
                "capacity becomes twice their number."
            )
        added, index = self._graph.update(comps, staged, self._skip)
        if self.graph_window is not None:
            self.graph_window.add_vectors(added, index)

    # ----------------------------------------------------------------- state
    def _register(self, name: str) -> int:
        """Gives a new component its index and its :class:`ComponentMean`."""
        comp = len(self._names)
        self._names.append(name)
        self._index[name] = comp
        self._metrics[name] = ComponentMean(name, self, comp)
        return comp

    def ensure(self, names: list[str]) -> None:
        """Registers ``names`` now, in this order."""
        for name in names:
            if name not in self._index:
                self._register(name)

    def read(self) -> dict[str, tuple[float, float, int]]:
        """Folds, then returns ``{name: (mean, weight_total, nonfinite_batches)}``.

        Components with no weight this epoch are left out; ``mean`` is NaN when
        a non-finite value went into it. Under a multi-worker strategy every
        worker must call it (at the same epoch end): it sums all workers' values.
        """
        if self._collective and not self._reduced:
            self._all_reduce()
            self._reduced = True  # a retried epoch end must not sum the workers twice
        running = self.running()
        if running is None:
            return {}
        sums, counts, bad = (v.numpy() for v in running)
        out = {}
        for i, (total, count, nonfinite) in enumerate(zip(sums, counts, bad, strict=True)):
            if count != 0 or nonfinite:
                mean = total / count if count else float("nan")
                out[self._names[i]] = (float(mean), float(count), int(nonfinite))
        return out

    def reset(self, index: int | None = None) -> None:
        """Zeroes every component (or the one at ``index``); pending values are dropped.

        The batch window is kept: batch curves run on across epochs.
        """
        if index is not None:
            running = self.running()
            if running is not None:
                keep = np.ones(running[0].shape[0], np.float64)
                keep[index] = 0.0
                self._running = tuple(v * keep for v in running)
            return
        self._pending.clear()
        if not self._collective:
            self._drain()
        self._running = None
        self._reduced = False

    # ----------------------------------------------------------------- batch window
    def take_window(self) -> dict[str, float]:
        """Folds, then returns and clears the means since the last call."""
        self.fold()
        window, self.window = self.window, None
        return self._means(window)

    @property
    def names(self) -> list[str]:
        """Component names, in index order."""
        return list(self._names)

    def running_means(self) -> dict[str, float]:
        """Folds, then returns the means so far of components that have data."""
        return self._means(self.running())

    def _means(self, vectors: tuple | None) -> dict[str, float]:
        if vectors is None:
            return {}
        sums, counts = vectors[0].numpy(), vectors[1].numpy()
        return {self._names[i]: float(sums[i] / counts[i]) for i in range(len(sums)) if counts[i]}
