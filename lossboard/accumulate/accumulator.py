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

import tensorflow as tf

from lossboard.accumulate import inputs as batch_lib
from lossboard.accumulate import staging, tf_private
from lossboard.accumulate.component_mean import ComponentMean
from lossboard.accumulate.distribute import is_multi_worker, local_parts
from lossboard.accumulate.graph_sums import GraphSums
from lossboard.accumulate.nonfinite import Nonfinite
from lossboard.accumulate.pending import Pending, Signature
from lossboard.accumulate.sums import Sums, total
from lossboard.accumulate.windows import NO_WINDOWS, BatchWindows, NoWindows
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


class FoldState(NamedTuple):
    """Everything a fold or an epoch end changes, replaced whole by one assignment.

    A fold computes a new state from the old one (every TensorFlow op runs first),
    then commits it with ``self.state = new``: an interrupt (Ctrl-C) anywhere before
    that line leaves the old state, with every recorded batch still pending; after it,
    everything is folded. Nothing is ever counted twice or lost.
    """

    running: Sums | None  # eager sums folded this epoch
    pending: Pending  # eager values recorded since the last fold
    open_window: Sums | None  # the batch-curve window still open, as of the last fold
    reduced: bool = False  # multi-worker: the workers' sums were all-reduced into ``running``
    logged: frozenset[int] = frozenset()  # components given eager values this epoch


class Registry(NamedTuple):
    """The components, by index: replaced whole when one is added."""

    names: tuple[str, ...]
    positions: dict[str, int]  # name -> index
    metrics: dict[str, ComponentMean]


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
        windows: Batch-curve windows (``update_freq=N``) and the sink their sums go
            to (see ``cut_window``); none by default.
        lock: The run's lock, shared with its other split and its logger.

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
        windows: BatchWindows | NoWindows = NO_WINDOWS,
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
        self._registry = Registry((), {}, {})
        #: Everything a fold or an epoch end changes, replaced whole (see ``FoldState``).
        self.state = FoldState(None, Pending(), None)
        self._fast: dict[tuple, Signature] = {}
        #: In-graph calls add here; never drained by a fold (results add it), zeroed at reset.
        self._graph = GraphSums(capacity)
        self._fold_every = fold_every
        #: Batch-curve windows, or the null object without batch curves.
        self.windows = windows
        self._warned_mixed = False
        #: Why values are refused now (set when the run is closed), or None.
        self.closed: str | None = None

    @property
    def metrics(self) -> dict[str, ComponentMean]:
        """``{name: ComponentMean}`` in order of first appearance."""
        return dict(self._registry.metrics)

    @property
    def names(self) -> list[str]:
        """Component names, in index order."""
        return list(self._registry.names)

    @property
    def num_components(self) -> int:
        """How many components are registered (without copying their names)."""
        return len(self._registry.names)

    @property
    def pending_entries(self) -> int:
        """Entries (one component of one batch) recorded since the last fold."""
        return self.state.pending.count

    @property
    def pending_bytes(self) -> int:
        """Bytes of the tensors recorded since the last fold."""
        return self.state.pending.nbytes

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
        if isinstance(batch_size, Mapping):  # one batch size per component: weights per name
            sample_weight = batch_lib.weights_of_batch_sizes(logs, sample_weight, batch_size)
            batch_size = None
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
        if not self._warned_mixed:
            note = staging.mixed_weight_note(staged, sample_weight)
            if note is not None:
                self._warned_mixed = True
                warn(note)
        if self._policy.checks_each_batch:
            staging.check_finite(staged)
        comps = [self._comp(s.name) for s in staged]
        pending = self.state.pending
        for s, comp in zip(staged, comps, strict=True):
            if s.key is None:
                pending.add_host(comp, s.value, skip=self._policy.skips)
            else:
                pending.add_entry(s.key, comp, s.value, s.weight, s.size)
        pending.compact()  # the batch is recorded whole first
        if self._row_ok(staged, logs, row_weight, sample_weight):
            enums = tuple(tf_private.dtype_enum(s.value) for s in staged)
            shapes = tuple(tf_private.shape_tuple(s.value) for s in staged)
            self._fast[keys or tuple(logs)] = Signature(
                enums, shapes, tuple(comps), by_batch_size=batch_size is not None
            )
        if pending.count >= self._fold_every or pending.nbytes >= FOLD_BYTES:
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
        pending = self.state.pending
        pending.add_row(signature, values, 1.0 if weight is None else float(weight))
        if pending.count >= self._fold_every or pending.nbytes >= FOLD_BYTES:
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
        """Folds every pending eager value into the running sums.

        With batch curves, the windows that ended since the last fold go to the
        windows' sink first. Every op runs before the state changes, and the commit
        is one assignment (see ``FoldState``): an interrupt (Ctrl-C) anywhere in a
        fold leaves everything pending, to be folded by the next one.
        In-graph sums are not folded: they stay in their variable until the epoch
        ends, and every result adds them (``running``).
        """
        state = self.state
        pending = state.pending
        if not (pending.count or pending.cuts):
            return
        names = self._registry.names
        parts = pending.sums(len(names), self._policy.skips) if pending.count else []
        if pending.cuts:
            eager = total(parts) if parts else None
            added, open_window, ended = self.windows.split(
                eager, pending.cuts, list(names), state.open_window
            )
            self.windows.sink(ended)  # before the commit: an interrupt after it hands them again
        else:
            added = total(parts).padded(len(names))
            open_window = self.windows.carry(state.open_window, added)
        running = added if state.running is None else state.running + added
        logged = state.logged | pending.components()
        self.state = FoldState(running, Pending(), open_window, state.reduced, logged)  # commit

    def _graph_sums(self) -> Sums | None:
        """The in-graph sums of this epoch (None if no in-graph call ever ran)."""
        with self._strategy.scope():
            return self._graph.read(self.num_components)

    def _all_reduce(self) -> None:
        """Multi-worker: sums every worker's running sums; all workers call it together.

        The eager sums join the in-graph ones in their (sum-on-read) variable, whose
        read is the all-reduce; the state then holds the total and the variable is zeroed.
        """
        self.fold()
        state = self.state
        if state.running is not None:
            if self.num_components > self._graph.capacity:
                raise ValueError(
                    f"{self.num_components} components are more than the {self._graph.capacity} "
                    "lossboard sums across workers; name them: LossLogger(..., components=[...])."
                )
            with self._strategy.scope():
                self._graph.add(state.running)
        self._graph.used = True
        reduced = self._graph_sums()
        with self._strategy.scope():
            self.state = self._graph.zero(then=state._replace(running=reduced, reduced=True))

    @_locked
    def running(self) -> Sums | None:
        """Folds, then returns the running sums: eager and in-graph."""
        self.fold()
        eager = self.state.running
        if self._collective:  # in-graph sums join at the epoch end's all-reduce
            return eager
        graph = self._graph_sums()
        if graph is None:
            return eager
        return graph if eager is None else eager + graph

    # ----------------------------------------------------------------- graph path
    @_locked
    def add_in_graph(
        self, logs: Mapping[str, Any], sample_weight: Any = None, batch_size: Any = None
    ) -> None:
        """Writes the update of one batch into the ``tf.function`` being traced."""
        if not logs:
            return  # nothing logged: no op added (as an eager call with no components)
        checks = [] if batch_size is None else batch_lib.graph_batch_size_checks(logs, batch_size)
        if isinstance(batch_size, Mapping):  # one batch size per component: weights per name
            sample_weight = batch_lib.weights_of_batch_sizes(logs, sample_weight, batch_size)
            batch_size = None
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
        comps = [self._comp(n) for n in names]
        if max(comps) >= self._graph.capacity:
            raise ValueError(
                f"component {self._registry.names[max(comps)]!r} is number {max(comps) + 1} "
                f"logged inside a tf.function, past the {self._graph.capacity} this logger sums "
                "in the graph. "
                "Name every component up front, LossLogger(..., components=[...]): the "
                "capacity becomes twice their number."
            )
        with tf.control_dependencies(checks):  # a failed check records nothing
            added, index = self._graph.update(comps, staged, self._policy.skips, batch_size)
        self.windows.add_in_graph(added, index)

    # ----------------------------------------------------------------- state
    def _comp(self, name: str) -> int:
        """The index of component ``name``, registered if new."""
        comp = self._registry.positions.get(name)
        return self._register(name) if comp is None else comp

    def _register(self, name: str) -> int:
        """Gives a new component its index and its ``ComponentMean``, in one assignment."""
        registry = self._registry
        comp = len(registry.names)
        self.windows.name(comp, name)  # eagerly, even while a tf.function is traced
        metric = ComponentMean(name, self, comp)
        self._registry = Registry(
            registry.names + (name,),
            {**registry.positions, name: comp},
            {**registry.metrics, name: metric},
        )
        return comp

    @_locked
    def ensure(self, names: list[str]) -> None:
        """Registers ``names`` now, in this order."""
        for name in names:
            self._comp(name)

    @_locked
    def logged(self) -> list[str]:
        """Folds, then returns the components given eager values this epoch, even values
        whose weights sum to 0 (which ``read`` leaves out)."""
        self.fold()
        names = self._registry.names
        return [names[c] for c in sorted(self.state.logged)]

    @_locked
    def read(self) -> dict[str, ComponentResult]:
        """Folds, then returns each component's result.

        Components with no weight this epoch are left out. Under a
        multi-worker strategy every worker must call it (at the same epoch
        end): it sums all workers' values.
        """
        if self._collective and not self.state.reduced:
            self._all_reduce()  # marks the state reduced: a retried epoch end sums them once
        running = self.running()
        if running is None:
            return {}
        sums, counts, bad = (v.numpy() for v in running)
        out = {}
        names = self._registry.names
        for i, (sum_, count, nonfinite) in enumerate(zip(sums, counts, bad, strict=True)):
            if not (math.isfinite(sum_) and math.isfinite(count)):
                nonfinite = max(nonfinite, 1)  # a float64 sum that overflowed is non-finite too
            if count != 0 or nonfinite:
                mean = sum_ / count if count else float("nan")
                out[names[i]] = ComponentResult(float(mean), float(count), int(nonfinite))
        return out

    @_locked
    def reset(self, index: int | None = None) -> None:
        """Zeroes every component (or the one at ``index``); pending values are dropped.

        The batch window is kept: batch curves run on across epochs. The in-graph
        variable and this object's state change on one line (``GraphSums.zero``
        returns the state to commit): TensorFlow's variable and lossboard's state
        are two stores, and that line is as close as they get.
        """
        if index is not None:
            running = self.running()
            if running is not None:  # the in-graph sums move into the state, zeroed there
                zeroed = self.state._replace(
                    running=running.zeroed(index), logged=self.state.logged - {index}
                )
                with self._strategy.scope():
                    self.state = self._graph.zero(then=zeroed)
            return
        fresh = self.next_epoch()
        if self._collective:  # the all-reduce zeroed the variable
            self.state = fresh
        else:
            with self._strategy.scope():
                self.state = self._graph.zero(then=fresh)

    @_locked
    def next_epoch(self) -> FoldState:
        """The state a new epoch starts from (batch-curve windows that ended are folded
        and handed over first; the open one runs on). Commit it with ``state`` once the
        in-graph sums are zeroed (``Run.commit_epoch`` does both for its two splits)."""
        if self.state.pending.cuts:
            self.fold()  # windows that ended are written, not dropped
        return FoldState(None, Pending(), self.state.open_window)

    @property
    def received(self) -> bool:
        """Whether any eager batch was recorded since the last epoch end."""
        return self.state.running is not None or self.state.pending.count > 0

    @property
    def graph(self) -> GraphSums:
        """The sums of calls inside a ``tf.function``; zeroed at each epoch end."""
        return self._graph

    @property
    def collective(self) -> bool:
        """Whether in-graph sums are all-reduced across workers at epoch ends."""
        return self._collective

    # ----------------------------------------------------------------- batch window
    @_locked
    def cut_window(self, step: int, wall_time: float) -> None:
        """Ends the batch-curve window of the batches recorded since the last cut.

        Its sums are made at the next fold (with the others that ended: one
        set of ops for many windows) and go to the windows' sink.
        """
        self.state.pending.cut(step, wall_time)

    @property
    def windows_pending(self) -> int:
        """Windows cut since the last fold."""
        return self.state.pending.window

    @_locked
    def running_means(self) -> dict[str, float]:
        """Folds, then returns the means so far of components that have data."""
        return self._means(self.running())

    def _means(self, sums: Sums | None) -> dict[str, float]:
        if sums is None:
            return {}
        totals, counts = sums.total.numpy(), sums.weight.numpy()
        names = self._registry.names
        return {names[i]: float(totals[i] / counts[i]) for i in range(len(totals)) if counts[i]}
