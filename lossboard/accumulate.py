"""Per-component float64 sums and counts for one split, at near-zero per-batch cost.

The per-batch path (:meth:`Accumulator.add`) dispatches no TensorFlow op and
reads no value back from the device: it checks static facts (type, dtype,
static shape) and appends references to pending lists. Every ``fold_every``
entries, and whenever a result is read, :meth:`Accumulator.fold` turns all
pending values into per-component sums with a handful of large operations
(one ``tf.stack``/``tf.concat`` per group of like tensors and one compiled
segment sum), then adds them to each component's :class:`ComponentMean`.

Inside a ``tf.function`` (:meth:`Accumulator.add_in_graph`) the update is
written into the graph instead, straight onto the same variables.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from lossboard import batch as batch_lib

_F64 = tf.float64
_HOST_WEIGHT, _TENSOR_WEIGHT, _ENTRY_WEIGHT = 0, 1, 2
_FAST_WEIGHTS = (int, float)

#: What to do with non-finite values: see ``LossLogger(nonfinite=...)``.
NONFINITE_POLICIES = ("raise", "warn", "skip", "raise_per_batch")


class ComponentMean(keras.metrics.Mean):
    """The float64 running mean of one loss component.

    A real ``keras.metrics.Mean`` (variables ``total`` and ``count``) with one
    more variable, ``nonfinite``: the number of batches that held a NaN or an
    infinity. :meth:`result` first folds values still pending in the logger,
    so it is exact at any time.

    Example:
        >>> import lossboard
        >>> logger = lossboard.LossLogger("/tmp/lossboard-doc/mean")
        >>> logger.on_train_batch_end(0, {"loss": 2.0})
        >>> logger.on_train_batch_end(1, {"loss": [4.0, 6.0]})
        >>> float(logger.metrics["loss"].result())
        4.0
    """

    def __init__(self, name: str, fold: Callable[[], None] | None = None):
        super().__init__(name=name, dtype="float64")
        self.nonfinite = self.add_variable(
            shape=(), initializer=keras.initializers.Zeros(), dtype="float64", name="nonfinite"
        )
        self._fold = fold

    def result(self) -> tf.Tensor:
        """The mean so far (0 before any data, as Keras' ``Mean``)."""
        if self._fold is not None and tf.executing_eagerly():
            self._fold()
        return super().result()

    def reset_state(self) -> None:
        super().reset_state()
        self.nonfinite.assign(0)


class _Group:
    """Pending entries that fold with one stack: same dtype, rank and weight kind."""

    __slots__ = ("values", "weights", "comps", "sizes")

    def __init__(self) -> None:
        self.values: list[Any] = []
        self.weights: list[Any] = []
        self.comps: list[int] = []
        self.sizes: list[int] = []


@tf.function(reduce_retracing=True)
def _segment_sums(values, weights, elem_entry, entry_comp, num_comps, skip_nonfinite: bool):
    """Per-component weighted sums, weight totals and non-finite batch counts."""
    values = tf.cast(values, _F64)
    weights = tf.cast(weights, _F64)
    num_entries = tf.shape(entry_comp)[0]
    bad_elem = tf.cast(tf.logical_not(tf.math.is_finite(values)), _F64)
    bad_entry = tf.math.unsorted_segment_max(bad_elem, elem_entry, num_entries)
    if skip_nonfinite:
        keep = tf.equal(tf.gather(bad_entry, elem_entry), 0.0)
        values = tf.where(keep, values, tf.zeros_like(values))
        weights = tf.where(keep, weights, tf.zeros_like(weights))
    elem_comp = tf.gather(entry_comp, elem_entry)
    sums = tf.math.unsorted_segment_sum(values * weights, elem_comp, num_comps)
    counts = tf.math.unsorted_segment_sum(weights, elem_comp, num_comps)
    bad = tf.math.unsorted_segment_sum(bad_entry, entry_comp, num_comps)
    return sums, counts, bad


class _VariableOps:
    """Compiled reads and writes over a fixed tuple of components' variables."""

    def __init__(self, metrics: tuple[ComponentMean, ...]):
        self.size = len(metrics)

        @tf.function
        def apply(parts):
            sums = tf.add_n([p[0] for p in parts])
            counts = tf.add_n([p[1] for p in parts])
            bad = tf.add_n([p[2] for p in parts])
            for i, m in enumerate(metrics):
                m.total.assign_add(sums[i])
                m.count.assign_add(counts[i])
                m.nonfinite.assign_add(bad[i])
            return sums, counts

        @tf.function
        def read():
            return tf.stack(
                [
                    tf.stack([tf.identity(m.total), tf.identity(m.count), tf.identity(m.nonfinite)])
                    for m in metrics
                ]
            )

        @tf.function
        def reset():
            for m in metrics:
                m.total.assign(tf.zeros((), _F64))
                m.count.assign(tf.zeros((), _F64))
                m.nonfinite.assign(tf.zeros((), _F64))

        self.apply, self.read, self.reset = apply, read, reset


def flat_weighted(name: str, value: tf.Tensor, weight: Any) -> tuple[tf.Tensor, tf.Tensor | None]:
    """Flattens a tensor value and its weight (broadcast as Keras' ``Mean`` does).

    Works eagerly and in a graph; shapes are checked statically.

    Returns:
        ``(values, weights)``, both rank 1 with one weight per element, or
        ``(values, None)`` when there is no weight.
    """
    if weight is None:
        return tf.reshape(value, [-1]), None
    weight = _as_tensor(batch_lib.label(name, weight=True), weight)
    squeeze_v, squeeze_w, expand = batch_lib.weight_shape_plan(
        name, tuple(value.shape), tuple(weight.shape)
    )
    if squeeze_v:
        value = tf.squeeze(value, axis=-1)
    if squeeze_w:
        weight = tf.squeeze(weight, axis=-1)
    for _ in range(expand):
        weight = tf.expand_dims(weight, -1)
    weight = tf.broadcast_to(weight, tf.shape(value))
    return tf.reshape(value, [-1]), tf.reshape(weight, [-1])


def _as_tensor(what: str, value: Any) -> tf.Tensor:
    """A checked tensor (a snapshot, for variables) from any accepted value."""
    if isinstance(value, tf.Variable):
        value = tf.convert_to_tensor(value)
    if not isinstance(value, tf.Tensor):
        array = batch_lib.host_array(what, value)
        value = tf.constant(array)
    batch_lib.check_tensor(what, value)
    return value


class Accumulator:
    """Running float64 means of every component of one split (train or validation).

    Args:
        nonfinite: One of ``NONFINITE_POLICIES``; only ``"skip"`` changes what
            is summed (batches holding a NaN or infinity are left out), and
            ``"raise_per_batch"`` checks each eager batch on the host.
        fold_every: How many pending entries (one per component per batch)
            trigger a fold. Bounds memory; larger folds amortize better.
        on_new: Called with each new component's name, after it is created.
    """

    def __init__(
        self,
        nonfinite: str = "raise",
        fold_every: int = 2048,
        on_new: Callable[[str], None] | None = None,
    ):
        self.metrics: dict[str, ComponentMean] = {}
        self._index: dict[str, int] = {}
        self._ops: _VariableOps | None = None
        self._groups: dict[tuple, _Group] = {}
        self._host: dict[int, list[float]] = {}
        self._pending = 0
        self._fold_every = fold_every
        self._skip = nonfinite == "skip"
        self._per_batch_check = nonfinite == "raise_per_batch"
        self._on_new = on_new
        self.window: tuple[tf.Tensor, tf.Tensor] | None = None
        self.track_window = False

    # ----------------------------------------------------------------- eager path
    def add(self, logs: Mapping[str, Any], sample_weight: Any = None) -> None:
        """Records one eager batch. Checks everything before recording anything."""
        staged = []
        for name, value in logs.items():
            w = None if sample_weight is None else batch_lib.weight_for(name, sample_weight)
            if type(value) is batch_lib.EagerTensor and (w is None or type(w) in _FAST_WEIGHTS):
                # The fast path: an unweighted (or number-weighted) rank-0/1 tensor.
                shape = value._shape_tuple()
                enum = value._datatype_enum()
                if len(shape) <= 1 and enum in batch_lib.REAL_DTYPE_ENUMS and 0 not in shape:
                    rank = len(shape)
                    weight = 1.0 if w is None else float(w)
                    staged.append(
                        (name, (enum, rank, _HOST_WEIGHT, 0), value, weight, shape[0] if rank else 1)
                    )
                    continue
            staged.append(self._stage(name, value, w))
        if self._per_batch_check:
            self._check_finite(staged)
        for name, key, value, weight, size in staged:
            comp = self._index.get(name)
            if comp is None:
                comp = self._create(name)
            if key is None:
                host = self._host.get(comp)
                if host is None:
                    host = self._host[comp] = [0.0, 0.0, 0.0]
                total, count, finite = value
                if finite or not self._skip:
                    host[0] += total
                    host[1] += count
                host[2] += not finite
                continue
            group = self._groups.get(key)
            if group is None:
                group = self._groups[key] = _Group()
            group.values.append(value)
            group.weights.append(weight)
            group.comps.append(comp)
            group.sizes.append(size)
        self._pending += len(staged)
        if self._pending >= self._fold_every:
            self.fold()

    def _stage(self, name: str, value: Any, weight: Any) -> tuple:
        """The general path of :meth:`add`: checks a value and its weight.

        Returns ``(name, group_key, value, weight, size)``; ``group_key`` is
        None for a host value, whose ``value`` is then ``(sum, count, finite)``.
        """
        what = batch_lib.label(name)
        if not isinstance(value, tf.Tensor | tf.Variable):
            array = batch_lib.host_array(what, value)
            if not isinstance(weight, tf.Tensor | tf.Variable):
                return name, None, batch_lib.host_weighted(name, array, weight), None, 0
            value = array
        value = _as_tensor(what, value)
        rank = 1 if value.shape.rank else 0
        size = int(value.shape.num_elements())
        flat = tf.reshape(value, [-1]) if value.shape.rank > 1 else value
        enum = value.dtype.as_datatype_enum
        if weight is not None and not isinstance(weight, tf.Tensor | tf.Variable):
            host_w = batch_lib.host_array(batch_lib.label(name, weight=True), weight)
            if host_w.ndim == 0:
                return name, (enum, rank, _HOST_WEIGHT, 0), flat, float(host_w), size
            weight = host_w
        if weight is None:
            return name, (enum, rank, _HOST_WEIGHT, 0), flat, 1.0, size
        weight = _as_tensor(batch_lib.label(name, weight=True), weight)
        w_enum = weight.dtype.as_datatype_enum
        if weight.shape.rank == 0:
            kind = _ENTRY_WEIGHT if rank else _TENSOR_WEIGHT
            return name, (enum, rank, kind, w_enum), flat, weight, size
        flat, flat_w = flat_weighted(name, value, weight)
        return name, (enum, 1, _TENSOR_WEIGHT, w_enum), flat, flat_w, size

    def _check_finite(self, staged: list[tuple]) -> None:
        """``nonfinite="raise_per_batch"``: one host read per batch, before recording."""
        for name, key, value, _, _ in staged:
            finite = value[2] if key is None else bool(tf.reduce_all(tf.math.is_finite(tf.cast(value, _F64))))
            if not finite:
                raise FloatingPointError(
                    f"component {name!r}: this batch holds a NaN or an infinity "
                    "(nonfinite='raise_per_batch'). Nothing from this batch was recorded."
                )

    def fold(self) -> None:
        """Adds every pending value to its component's accumulator."""
        if not self._pending:
            return
        num_comps = np.asarray(len(self.metrics), np.int32)
        parts = []
        for key, group in self._groups.items():
            _, rank, weight_kind, _ = key
            stack = tf.stack if rank == 0 else tf.concat
            values = stack(group.values, 0)
            entries = len(group.comps)
            sizes = np.asarray(group.sizes)
            elem_entry = np.arange(entries) if rank == 0 else np.repeat(np.arange(entries), sizes)
            if weight_kind == _HOST_WEIGHT:
                weights: Any = np.asarray(group.weights, np.float64)
                if rank:
                    weights = np.repeat(weights, sizes)
            elif weight_kind == _TENSOR_WEIGHT:
                weights = stack(group.weights, 0)
            else:
                weights = tf.repeat(tf.stack(group.weights), sizes)
            parts.append(
                _segment_sums(
                    values, weights, elem_entry, np.asarray(group.comps, np.int32), num_comps, self._skip
                )
            )
        if self._host:
            host = np.zeros((3, len(self.metrics)), np.float64)
            for comp, (total, count, bad) in self._host.items():
                host[:, comp] = (total, count, bad)
            parts.append(tuple(host))
        self._groups.clear()
        self._host.clear()
        self._pending = 0
        sums, counts = self._variable_ops().apply(tuple(parts))
        if self.track_window:
            self._add_window(sums, counts)

    # ----------------------------------------------------------------- graph path
    def add_in_graph(self, logs: Mapping[str, Any], sample_weight: Any = None) -> None:
        """Writes the update of one batch into the ``tf.function`` being traced."""
        staged = []
        for name, value in logs.items():
            w = None if sample_weight is None else batch_lib.weight_for(name, sample_weight)
            flat, flat_w = flat_weighted(name, _as_tensor(batch_lib.label(name), value), w)
            staged.append((name, flat, flat_w))
        for name, flat, flat_w in staged:
            metric = self._get_in_graph(name)
            values = tf.cast(flat, _F64)
            weights = tf.ones_like(values) if flat_w is None else tf.cast(flat_w, _F64)
            finite = tf.reduce_all(tf.math.is_finite(values))
            if self._skip:
                values = tf.where(finite, values, tf.zeros_like(values))
                weights = weights * tf.cast(finite, _F64)
            metric.total.assign_add(tf.reduce_sum(values * weights))
            metric.count.assign_add(tf.reduce_sum(weights))
            metric.nonfinite.assign_add(1.0 - tf.cast(finite, _F64))

    def _get_in_graph(self, name: str) -> ComponentMean:
        comp = self._index.get(name)
        if comp is not None:
            return self.metrics[name]
        try:
            with tf.init_scope():
                self._create(name)
        except ValueError as err:
            if "singleton" not in str(err) and "first call" not in str(err):
                raise
            raise ValueError(
                f"component {name!r} first appeared while a tf.function was being traced "
                "again; TensorFlow only lets variables be created on a function's first "
                "trace. Name every component up front: LossLogger(..., "
                f"components=[..., {name!r}]), or log it from the first traced call."
            ) from None
        return self.metrics[name]

    # ----------------------------------------------------------------- state
    def _create(self, name: str) -> int:
        metric = ComponentMean(name, fold=self.fold)
        comp = len(self.metrics)
        self.metrics[name] = metric
        self._index[name] = comp
        if self._on_new is not None:
            self._on_new(name)
        return comp

    def ensure(self, names: list[str]) -> None:
        """Creates accumulators for ``names`` now (eagerly), in this order."""
        for name in names:
            if name not in self._index:
                self._create(name)

    def _variable_ops(self) -> _VariableOps:
        if self._ops is None or self._ops.size != len(self.metrics):
            self._ops = _VariableOps(tuple(self.metrics.values()))
        return self._ops

    def read(self) -> dict[str, tuple[float, float, int]]:
        """Folds, then returns ``{name: (mean, weight_total, nonfinite_batches)}``.

        Components with no weight this epoch are left out; ``mean`` is NaN when
        a non-finite value went into it.
        """
        self.fold()
        if not self.metrics:
            return {}
        table = self._variable_ops().read().numpy()
        out = {}
        for (name, _), (total, count, bad) in zip(self.metrics.items(), table, strict=True):
            if count != 0 or bad:
                mean = total / count if count else float("nan")
                out[name] = (float(mean), float(count), int(bad))
        return out

    def reset(self) -> None:
        """Zeroes every accumulator (pending values are dropped).

        The batch window is kept: batch curves run on across epochs.
        """
        self._groups.clear()
        self._host.clear()
        self._pending = 0
        if self.metrics:
            self._variable_ops().reset()

    # ----------------------------------------------------------------- batch window
    def _add_window(self, sums: tf.Tensor, counts: tf.Tensor) -> None:
        if self.window is None or self.window[0].shape[0] != sums.shape[0]:
            old = self.window
            self.window = (sums, counts)
            if old is not None:
                pad = [[0, int(sums.shape[0]) - int(old[0].shape[0])]]
                self.window = (sums + tf.pad(old[0], pad), counts + tf.pad(old[1], pad))
            return
        self.window = (self.window[0] + sums, self.window[1] + counts)

    def take_window(self) -> dict[str, float]:
        """Folds, then returns and clears the means since the last call."""
        self.fold()
        if self.window is None:
            return {}
        sums, counts = (t.numpy() for t in self.window)
        self.window = None
        names = list(self.metrics)
        return {names[i]: float(sums[i] / counts[i]) for i in range(len(sums)) if counts[i]}
