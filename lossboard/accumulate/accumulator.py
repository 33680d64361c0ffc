"""Per-component float64 running means of one split, at near-zero per-batch cost.

``Accumulator`` is the state behind ``LossLogger``: one
``ComponentMean`` per component, values pending a fold
(``lossboard.accumulate.pending``), and the in-graph sums of calls made inside a
``tf.function`` (``lossboard.accumulate.graph_sums``). The per-batch path dispatches no
TensorFlow op per component (one join per ~256 values, see
``pending.RowBlock``) and reads nothing back from the device; results are exact
at any time because reading one folds first.
"""

from __future__ import annotations

import functools
import math
import threading
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import numpy as np
import tensorflow as tf

from lossboard.accumulate import inputs as batch_lib
from lossboard.accumulate import staging, tf_private
from lossboard.accumulate.component_mean import ComponentMean
from lossboard.accumulate.distribute import is_multi_worker, local_parts
from lossboard.accumulate.graph_sums import GraphSums
from lossboard.accumulate.nonfinite import Nonfinite
from lossboard.accumulate.pending import Pending, Signature
from lossboard.accumulate.sums import Sums, total
from lossboard.warn import warn

#: Pending bytes that trigger a fold, whatever the number of entries. A fold's
#: temporaries are about ten times what it folds, so this bounds the memory a
#: fold adds to about 10 MiB, and one fold to about 10 ms (benchmarks/memory.py).
FOLD_BYTES = 1 << 20


class ComponentResult(NamedTuple):
    """One component's value at an epoch end (or any time)."""

    mean: float  # NaN when a non-finite value went into it
    weight: float  # the sum of the weights
    nonfinite: int  # batches that held a NaN or an infinity


class Windows(NamedTuple):
    """The sums of batch-curve windows that ended: row ``i`` is the window cut at ``step[i]``."""

    step: list[int]
    wall_time: list[float]
    names: list[str]  # component names, by column
    total: np.ndarray  # (windows, components) weighted sums
    weight: np.ndarray  # (windows, components) sums of the weights


def _locked(method: Callable[..., Any]) -> Callable[..., Any]:
    """Runs ``method`` under the accumulator's lock: one reader or writer at a time."""

    @functools.wraps(method)
    def locked(self: Accumulator, *args: Any, **kwargs: Any) -> Any:
        with self.lock:
            return method(self, *args, **kwargs)

    return locked


class Accumulator:
    """Running float64 means of every component of one split (train or validation).

    Args:
        nonfinite: The ``Nonfinite`` policy (or its
            name): whether batches holding a NaN or an infinity are summed,
            and whether eager batches are checked on the host.
        fold_every: How many pending entries (one per component per batch)
            trigger a fold (as do ``FOLD_BYTES`` of pending tensors).
        capacity: Components the in-graph vectors hold (see
            ``GraphSums``).
        strategy: The ``tf.distribute`` strategy (the current one by default).
        batch_window: Also sum the batches of each batch-curve window (see
            ``cut_window``), for ``update_freq=N``.

    Examples:
        >>> acc = Accumulator()
        >>> acc.add({"loss": [1.0, 2.0, 6.0]})
        >>> acc.read()["loss"]
        ComponentResult(mean=3.0, weight=3.0, nonfinite=0)
    """

    def __init__(
        self,
        nonfinite: Nonfinite | str = Nonfinite.RAISE,
        fold_every: int = 16384,
        capacity: int = 128,
        strategy: tf.distribute.Strategy | None = None,
        *,
        batch_window: bool = False,
        lock: threading.RLock | None = None,
    ):
        #: Held by every read and write of this accumulator's state, whatever the thread (a
        #: progress display reading ``result()`` beside the training loop); a run shares one
        #: between its splits and its logger.
        self.lock = lock if lock is not None else threading.RLock()
        self._strategy = strategy or tf.distribute.get_strategy()
        self._policy = Nonfinite.parse(nonfinite)
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
        self._running: Sums | None = None
        self._graph = GraphSums(capacity)
        self._fold_every = fold_every
        self._batch_window = batch_window
        self._window: Sums | None = None  # the window still open, as of the last fold
        self._cuts: tuple[list[int], list[float]] = ([], [])  # step, wall time of each cut
        #: Called by ``fold`` with the windows that ended since the last fold.
        self.window_sink: Callable[[Windows], None] | None = None
        self._warned_mixed = False
        #: Whether any eager batch was recorded since the last reset.
        self.received = False
        #: Sums of in-graph calls since the last batch-curve point (with ``batch_window``).
        self.graph_window = GraphSums(capacity) if batch_window else None
        #: Component names by index, for batch curves written in the graph (with ``batch_window``).
        self.name_vector: tf.Variable | None = None
        if batch_window:
            with tf.init_scope():
                self.name_vector = tf.Variable([""] * capacity, trainable=False, name="names")

    @property
    def metrics(self) -> dict[str, ComponentMean]:
        """``{name: ComponentMean}`` in order of first appearance."""
        return dict(self._metrics)

    @property
    def names(self) -> list[str]:
        """Component names, in index order."""
        return list(self._names)

    @property
    def num_components(self) -> int:
        """How many components are registered (without copying their names)."""
        return len(self._names)

    @property
    def pending_entries(self) -> int:
        """Entries (one component of one batch) recorded since the last fold."""
        return self._pending.count

    @property
    def pending_bytes(self) -> int:
        """Bytes of the tensors recorded since the last fold."""
        return self._pending.nbytes

    @property
    def steady_state_signatures(self) -> int:
        """Kinds of batch that take the row fast path (see ``add``)."""
        return len(self._fast)

    # ----------------------------------------------------------------- eager path
    @_locked
    def add(
        self,
        logs: Mapping[str, Any],
        sample_weight: Any = None,
        keys: tuple | None = None,
        batch_size: Any = None,
    ) -> None:
        """Records one eager batch. Checks everything before recording anything.

        Args:
            logs: ``{name: value}``.
            sample_weight: As ``keras.metrics.Mean``'s, for every component (or
                a mapping per component).
            keys: ``tuple(logs)`` when the caller has it already.
            batch_size: The batch's number of examples (checked by the caller):
                scalar components are weighted by it, per-example ones are not.
        """
        if batch_size is None:
            row_weight = sample_weight
        else:
            row_weight = batch_size if sample_weight is None else None
        if sample_weight is None or sample_weight is row_weight:  # never with a mapping
            fast = row_weight is None or type(row_weight) in staging.FAST_WEIGHTS
        else:
            fast = False
        if fast:
            if keys is None:
                keys = tuple(logs)
            signature = self._fast.get(keys)
            if (
                signature is not None
                and signature.by_batch_size == (batch_size is not None)
                and (batch_size is None or signature.lead in (None, batch_size))
                and self._add_row(signature, logs, row_weight)
            ):
                return
        staged = staging.stage_batch(logs, sample_weight, self._allow_empty, batch_size)
        self.received = True
        if not self._warned_mixed:
            note = staging.mixed_weight_note(staged, sample_weight)
            if note is not None:
                self._warned_mixed = True
                warn(note)
        if self._policy.checks_each_batch:
            staging.check_finite(staged)
        comps = []
        for s in staged:
            comp = self._index.get(s.name)
            if comp is None:
                comp = self._register(s.name)
            comps.append(comp)
            if s.key is None:
                self._pending.add_host(comp, s.value, skip=self._policy.skips)
            else:
                self._pending.add_entry(s.key, comp, s.value, s.weight, s.size)
        self._pending.compact()  # the batch is recorded whole first
        if self._row_ok(staged, logs, row_weight, sample_weight):
            enums = tuple(tf_private.dtype_enum(s.value) for s in staged)
            shapes = tuple(tf_private.shape_tuple(s.value) for s in staged)
            self._fast[keys or tuple(logs)] = Signature(
                enums, shapes, tuple(comps), by_batch_size=batch_size is not None
            )
        if self._pending.count >= self._fold_every or self._pending.nbytes >= FOLD_BYTES:
            self.fold()

    def _add_row(self, signature: Signature, logs: Mapping[str, Any], weight: Any) -> bool:
        """Fast path: the steady state of a loop (same names, dtypes and shapes as an
        earlier batch) is kept as one tuple of references, checked by comparing two
        tuples (benchmark rows "eager call": 11-95 us per step at 1-64 components)."""
        values = tuple(logs.values())
        try:
            same = (
                tuple(map(tf_private.dtype_enum, values)) == signature.enums
                and tuple(map(tf_private.shape_tuple, values)) == signature.shapes
            )
        except TypeError:  # cheaper than an isinstance per value: a value that is not a tensor
            return False
        if not same:
            return False
        self._pending.add_row(signature, values, 1.0 if weight is None else float(weight))
        self.received = True
        if self._pending.count >= self._fold_every or self._pending.nbytes >= FOLD_BYTES:
            self.fold()
        return True

    def _row_ok(
        self, staged: list[staging.Staged], logs: Mapping, row_weight: Any, sample_weight: Any
    ) -> bool:
        """Whether later batches like this one may take the row fast path."""
        return (
            not self._policy.checks_each_batch
            and len(staged) == len(logs)
            and all(s.row_ok for s in staged)
            and (row_weight is None or type(row_weight) in staging.FAST_WEIGHTS)
            and (sample_weight is None or row_weight is sample_weight)
        )

    @_locked
    def fold(self) -> None:
        """Folds every pending value (and the in-graph sums) into the running sums.

        With batch curves, the windows that ended since the last fold go to
        ``window_sink``. Every op runs before any state changes, and the
        commit is a few assignments: an interrupt (Ctrl-C) in a fold leaves
        everything pending, to be folded by the next one.
        """
        num = len(self._names)
        windows = self._pending.window + 1
        pending = self._pending.count or windows > 1
        parts = self._pending.sums(num, self._policy.skips) if pending else []
        drained = None if self._collective else self._read_graph()
        ended = None
        window: Sums | None
        if windows > 1:
            eager = total(parts) if parts else None
            added, window, ended = self._split_windows(eager, windows, num, drained)
        else:
            if drained is not None:
                parts.append(drained)
            if not parts:
                return
            added = total(parts).padded(num)
            window = self._window
            if self._batch_window:
                window = added if window is None else window + added
        running = added if self._running is None else self._running + added
        # Commit: no TensorFlow call until everything folded is in ``running``.
        self._running, self._window = running, window
        self._pending.clear()
        if drained is not None:
            self._zero_graph()
        if ended is not None:
            self._cuts = ([], [])
            if self.window_sink is not None:
                self.window_sink(ended)

    def _split_windows(
        self, eager: Sums | None, windows: int, num: int, drained: Sums | None
    ) -> tuple[Sums, Sums, Windows]:
        """Splits the eager sums by window: (everything folded, the window still
        open, the windows that ended). Changes nothing.

        One host read per fold, whatever the number of windows. The in-graph
        sums (whose batch curves the graph writes) join the open window, as
        without cuts.
        """
        shape = (windows, num)
        if eager is None:  # windows that ended without any value
            total_, weight, bad = (np.zeros(shape) for _ in range(3))
        else:
            total_, weight, bad = (v.numpy().reshape(shape) for v in eager)
        added = Sums.of(*(m.sum(axis=0) for m in (total_, weight, bad)))
        carry = self._window
        if carry is not None:  # the window open at the last fold ends in this one
            for matrix, vector in zip((total_, weight), carry, strict=False):
                values = vector.numpy()
                matrix[0, : len(values)] += values
        steps, walls = self._cuts
        ended = Windows(list(steps), list(walls), list(self._names), total_[:-1], weight[:-1])
        window = Sums.of(total_[-1], weight[-1], bad[-1])
        if drained is not None:
            window = window + drained
            added = added + drained
        return added.padded(num), window, ended

    def _read_graph(self) -> Sums | None:
        with self._strategy.scope():
            return self._graph.read(len(self._names))

    def _zero_graph(self) -> None:
        with self._strategy.scope():
            self._graph.zero()

    def _drain(self) -> Sums | None:
        sums = self._read_graph()
        if sums is not None:
            self._zero_graph()
        return sums

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
                self._graph.add(self._running)
        self._graph.used = True
        self._running = self._drain()

    @_locked
    def running(self) -> Sums | None:
        """Folds, then returns the running sums."""
        self.fold()
        return self._running

    # ----------------------------------------------------------------- graph path
    @_locked
    def add_in_graph(
        self, logs: Mapping[str, Any], sample_weight: Any = None, batch_size: Any = None
    ) -> None:
        """Writes the update of one batch into the ``tf.function`` being traced."""
        if not logs:
            return  # nothing logged: no op added (as an eager call with no components)
        staged, names = [], []
        for name, value in logs.items():
            weight = batch_lib.weight_for(name, sample_weight)
            parts = local_parts(value)
            if batch_size is not None:
                weight = batch_lib.weight_with_batch_size(name, value, weight, batch_size, parts)
                if weight is batch_size:  # a scalar mean: stacked with the others, weighted
                    weight = None
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
        checks = [] if batch_size is None else batch_lib.graph_batch_size_checks(logs, batch_size)
        with tf.control_dependencies(checks):  # a failed check records nothing
            added, index = self._graph.update(comps, staged, self._policy.skips, batch_size)
        if self.graph_window is not None:
            self.graph_window.add_rows(added, index)

    # ----------------------------------------------------------------- state
    def _register(self, name: str) -> int:
        """Gives a new component its index and its ``ComponentMean``."""
        comp = len(self._names)
        self._names.append(name)
        self._index[name] = comp
        self._metrics[name] = ComponentMean(name, self, comp)
        if self.name_vector is not None and comp < self.graph_window.capacity:  # type: ignore[union-attr]
            with tf.init_scope():  # eagerly, even while a tf.function is traced
                self.name_vector[comp].assign(name)
        return comp

    @_locked
    def ensure(self, names: list[str]) -> None:
        """Registers ``names`` now, in this order."""
        for name in names:
            if name not in self._index:
                self._register(name)

    @_locked
    def read(self) -> dict[str, ComponentResult]:
        """Folds, then returns each component's result.

        Components with no weight this epoch are left out. Under a
        multi-worker strategy every worker must call it (at the same epoch
        end): it sums all workers' values.
        """
        if self._collective and not self._reduced:
            self._all_reduce()
            self._reduced = True  # a retried epoch end must not sum the workers twice
        running = self.running()
        if running is None:
            return {}
        sums, counts, bad = (v.numpy() for v in running)
        out = {}
        for i, (sum_, count, nonfinite) in enumerate(zip(sums, counts, bad, strict=True)):
            if not (math.isfinite(sum_) and math.isfinite(count)):
                nonfinite = max(nonfinite, 1)  # a float64 sum that overflowed is non-finite too
            if count != 0 or nonfinite:
                mean = sum_ / count if count else float("nan")
                out[self._names[i]] = ComponentResult(float(mean), float(count), int(nonfinite))
        return out

    @_locked
    def reset(self, index: int | None = None) -> None:
        """Zeroes every component (or the one at ``index``); pending values are dropped.

        The batch window is kept: batch curves run on across epochs.
        """
        if index is not None:
            running = self.running()
            if running is not None:
                self._running = running.zeroed(index)
            return
        if self._pending.window:
            self.fold()  # windows that ended are written, not dropped
        self._pending.clear()
        if not self._collective:
            self._drain()
        self._running = None
        self._reduced = False
        self.received = False

    # ----------------------------------------------------------------- batch window
    @_locked
    def cut_window(self, step: int, wall_time: float) -> None:
        """Ends the batch-curve window of the batches recorded since the last cut.

        Its sums are made at the next fold (with the others that ended: one
        set of ops for many windows) and go to ``window_sink``.
        """
        self._pending.cut()
        self._cuts[0].append(step)
        self._cuts[1].append(wall_time)

    @property
    def windows_pending(self) -> int:
        """Windows cut since the last fold."""
        return self._pending.window

    @_locked
    def running_means(self) -> dict[str, float]:
        """Folds, then returns the means so far of components that have data."""
        return self._means(self.running())

    def _means(self, sums: Sums | None) -> dict[str, float]:
        if sums is None:
            return {}
        totals, counts = sums.total.numpy(), sums.weight.numpy()
        return {
            self._names[i]: float(totals[i] / counts[i]) for i in range(len(totals)) if counts[i]
        }
