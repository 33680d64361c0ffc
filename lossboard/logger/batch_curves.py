"""Batch curves (``update_freq=N``): the mean of every N train batches, at step = global batch.

``BatchCount`` only counts train batches (``update_freq="epoch"``);
``BatchCurves`` also writes ``batch_<name>`` every N of them, from eager
calls, from calls inside a ``tf.function``, and from ``model.fit``'s logs.

Eager and ``fit`` points are written in bulk: a window's end is only noted
(its step and wall time); the windows' means are made together at a fold and
appended to the event file together, at most ``DELAY`` seconds or
``MAX_POINTS`` points after the first of them, and always by the epoch's end.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import tensorflow as tf

from lossboard.accumulate import tf_private
from lossboard.accumulate.accumulator import Accumulator
from lossboard.accumulate.windows import BatchWindows, Windows
from lossboard.events.encode import Points
from lossboard.layout import BATCH_PREFIX, TRAIN, batch_tag
from lossboard.logger import arguments
from lossboard.logger.writer import RunWriter, write_scalar
from lossboard.warn import LossboardRuntimeWarning, warn

_FLOAT32_MAX = float(np.finfo(np.float32).max)

#: Seconds a batch-curve point may wait before it is written (TensorBoard
#: reloads every 5 s by default). Checked at each window's end, so a loop that
#: stops calling leaves its points to the next call, ``on_epoch_end`` or ``close``.
DELAY = 2.0
#: Points that are written at once at most: bounds the pause of one write
#: (about 1 ms per 1000 points here) and the memory they hold.
MAX_POINTS = 4096


#: The file beside a run's event files that holds its global batch count, rewritten at each
#: epoch end: a resumed logger continues its batch steps from it, also after an epoch-only
#: run (which writes no ``batch_*`` step). TensorBoard and the reader ignore it.
COUNT_FILE = ".lossboard-batches"


def read_count(log_dir: str) -> int:
    """The global batch count a run saved (0 when it saved none, or it is unreadable)."""
    try:
        with tf.io.gfile.GFile(os.path.join(log_dir, COUNT_FILE), "r") as f:
            return max(0, int(json.load(f)["global_batch"]))
    except (tf.errors.OpError, OSError, ValueError, KeyError, TypeError):
        return 0


def save_count(log_dir: str, count: int) -> None:
    """Saves the global batch count: a new file renamed over the old one, never half written.

    Raises:
        OSError, tf.errors.OpError: When the file cannot be written.
    """
    path = os.path.join(log_dir, COUNT_FILE)
    temporary = f"{path}.{os.getpid()}.tmp"  # two processes on one run never share it
    with tf.io.gfile.GFile(temporary, "w") as f:
        f.write(json.dumps({"global_batch": int(count)}))
    tf.io.gfile.rename(temporary, path, overwrite=True)


class BatchCount:
    """Counts train batches across epochs, eager and in-graph; writes no batch curve.

    Args:
        start: Batches counted before (the last ``batch_*`` step on disk).
        strategy: The ``tf.distribute`` strategy of the logger.
    """

    def __init__(self, start: int = 0, strategy: tf.distribute.Strategy | None = None):
        self.batches = start
        self._start = start
        self._strategy = strategy or tf.distribute.get_strategy()
        self._graph_used = False
        # In-graph train batches: made now, eagerly (never while tracing).
        with tf.init_scope():
            self._graph_step = tf.Variable(
                tf.constant(start, tf.int64), trainable=False, name="global_batch"
            )

    @property
    def global_batch(self) -> int:
        """Train batches seen so far, across epochs (the ``batch_*`` step).

        Batches logged inside a ``tf.function`` under a ``tf.distribute``
        strategy are not counted (each replica would count them).
        """
        graph = int(self._graph_step.numpy()) - self._start if self._graph_used else 0
        return self.batches + graph

    def eager_batch(self) -> None:
        """After an eager train batch was recorded."""
        self.batches += 1

    def check_graph(self) -> None:
        """Before a train batch is traced into a ``tf.function``: refuses what cannot work."""

    def check_eager(self) -> None:
        """Before an eager train batch is recorded: refuses what cannot work."""

    def graph_batch(self) -> None:
        """While tracing a train batch inside a ``tf.function``: counts it in the graph."""
        if self._strategy.num_replicas_in_sync == 1:
            self._graph_step.assign_add(1)
            self._graph_used = True

    def fit_batch(self, logs: Mapping[str, Any] | None) -> None:
        """After a ``model.fit`` train batch (``logs`` are Keras' running means)."""
        self.batches += 1

    def write(self) -> None:
        """Writes batch-curve points still waiting (there are none without curves)."""


class Unwritten:
    """Batch-curve points made and not yet on disk: the sink of the train split's windows.

    The run makes it and hands ``take`` to the accumulator's ``BatchWindows``. A fold
    hands its windows over before it commits, so after an interrupt the same windows
    come again: a step already taken is dropped, never written twice.

    Args:
        start: The last batch-curve step on disk (the run resumes after it).
    """

    def __init__(self, start: int = 0, skip: bool = False):
        #: (points not on disk yet, the last step taken): replaced whole, in one assignment.
        self.state: tuple[tuple[Points, ...], int] = ((), start)
        #: ``nonfinite="skip"``: a mean beyond float32's range is left out, not written as inf.
        self._skip = skip
        self._warned: set[str] = set()  # tags already warned about

    @property
    def points(self) -> tuple[Points, ...]:
        return self.state[0]

    def take(self, windows: Windows) -> None:
        """The means of the windows that ended, as points (each step once)."""
        points, last = self.state
        fresh = np.asarray(windows.step, np.int64) > last
        if not fresh.any():
            return
        total, weight = windows.total[fresh], windows.weight[fresh]
        num = total.shape[1]
        with np.errstate(divide="ignore", invalid="ignore"):
            means = total / weight
        tags = [batch_tag(name) for name in windows.names[:num]]
        keep = weight != 0
        beyond = np.isfinite(means) & (np.abs(means) > _FLOAT32_MAX) & keep
        if beyond.any():
            self._beyond_float32(tags, beyond)
            if self._skip:
                keep &= ~beyond
        rows, cols = np.nonzero(keep)  # row-major: by step, then by component
        steps = np.asarray(windows.step, np.int64)[fresh]
        walls = np.asarray(windows.wall_time, np.float64)[fresh]
        made = Points(steps[rows], walls[rows], cols, means[rows, cols], tags)
        self.state = (points + (made,), int(steps[-1]))

    def _beyond_float32(self, tags: list[str], beyond: np.ndarray) -> None:
        """Says (once per tag) what happened to window means float32 cannot hold."""
        new = [tags[c] for c in np.flatnonzero(beyond.any(axis=0)) if tags[c] not in self._warned]
        if not new:
            return
        self._warned.update(new)
        fate = "left out (nonfinite='skip')" if self._skip else "written as inf or -inf"
        warn(
            f"batch curve {', '.join(map(repr, new))}: a window's mean is beyond float32's "
            f"range, in which TensorBoard's values are written; such points are {fate}. "
            "Said once per tag.",
            LossboardRuntimeWarning,
        )

    def add(self, points: Points) -> None:
        """Points made elsewhere (``fit``'s running means)."""
        self.state = (self.state[0] + (points,), self.state[1])

    def written(self) -> None:
        """The first points are on disk."""
        self.state = (self.state[0][1:], self.state[1])


#: Eager and in-graph train batches are counted apart (a host read per eager batch would
#: join them): batch curves from both kinds in one logger would put two points at a step.
_MIXED = (
    "on_train_batch_end: {now} after {before} of this logger, with update_freq=N batch "
    "curves: the two kinds of call number their batch-curve points apart, so their points "
    "would overwrite each other. Nothing from this batch was recorded. Log train batches "
    "one way per logger (both work with update_freq='epoch'), or use a new LossLogger."
)


class BatchCurves(BatchCount):
    """Writes ``batch_<name>``, the mean over each window of ``every`` train batches.

    Args:
        every: N, the window length in train batches.
        train: The train split's accumulator, made with ``BatchWindows`` whose sink
            is ``unwritten.take``.
        writer: The run's writer.
        strategy: The ``tf.distribute`` strategy of the logger.
        unwritten: Where the train split's windows go as points.
        start: Batches counted before (the last ``batch_*`` step on disk).
    """

    def __init__(
        self,
        every: int,
        train: Accumulator,
        writer: RunWriter,
        strategy: tf.distribute.Strategy,
        unwritten: Unwritten,
        start: int = 0,
        clock: Callable[[], float] = time.monotonic,
    ):
        super().__init__(start, strategy)
        windows = train.windows
        if not isinstance(windows, BatchWindows):
            raise ValueError("BatchCurves needs an Accumulator made with BatchWindows.")
        self._names = windows.names
        self.every = every
        self._train = train
        self._window = windows.graph
        self._writer = writer
        self._clock = clock
        self._unwritten = unwritten
        self._fit_points: tuple[list[int], list[float], list[dict[str, float]]] = ([], [], [])
        self._waiting = 0  # points (windows x components) not yet on disk
        self._since: float | None = None  # clock time of the oldest of them

    @property
    def unwritten(self) -> int:
        """Batch-curve points made or due that are not on disk yet."""
        return self._waiting

    def eager_batch(self) -> None:
        self.batches += 1
        if (self.batches - self._start) % self.every == 0:  # whole windows after a resume
            self._train.cut_window(self.batches, time.time())
            self._due(max(1, self._train.num_components))  # no list copy per batch

    def fit_batch(self, logs: Mapping[str, Any] | None) -> None:
        self.batches += 1
        if (self.batches - self._start) % self.every == 0 and logs:
            numbers = {k: arguments.scalar(v) for k, v in logs.items()}
            values = {batch_tag(k): v for k, v in numbers.items() if v is not None}
            if values:
                steps, walls, rows = self._fit_points
                steps.append(self.batches)
                walls.append(time.time())
                rows.append(values)
                self._due(len(values))

    def _due(self, points: int) -> None:
        """Notes ``points`` more waiting; writes them all when they are too many or too old."""
        self._waiting += points
        now = self._clock()
        if self._since is None:
            self._since = now
        if self._waiting >= MAX_POINTS or now - self._since >= DELAY:
            self.write()

    def write(self) -> None:
        """Makes the points of every window that ended, and writes them to disk.

        Raises:
            OSError: When writing fails. The points are kept (the next call
                writes them to a new event file) and nothing else changes.
        """
        if self._train.windows_pending:
            self._train.fold()
        steps, walls, rows = self._fit_points
        if rows:
            self._fit_points = ([], [], [])
            self._unwritten.add(_fit_points(steps, walls, rows))
        try:
            while self._unwritten.points:
                self._writer.points(TRAIN, self._unwritten.points[0])
                self._unwritten.written()
        except (tf.errors.OpError, OSError) as err:
            raise OSError(
                f"writing batch curves to {self._writer.log_dir!r} failed "
                f"({getattr(err, 'message', err)}); the points are kept and written at the "
                "next batch-curve point, epoch end or close: free the space or fix the path."
            ) from err
        self._waiting = 0
        self._since = None

    def check_eager(self) -> None:
        if self._graph_used:
            raise ValueError(
                _MIXED.format(now="an eager call", before="calls inside a tf.function")
            )

    def check_graph(self) -> None:
        if self.batches > self._start:
            raise ValueError(_MIXED.format(now="a call inside a tf.function", before="eager calls"))
        if self._strategy.num_replicas_in_sync > 1:
            raise ValueError(
                "update_freq=N batch curves are written from eager calls, or from tf.function "
                "calls without a tf.distribute strategy; under a strategy use update_freq='epoch', "
                "or pass the PerReplica values that strategy.run returns to on_train_batch_end "
                "eagerly."
            )
        if tf_private.in_xla_context():
            raise ValueError(
                "update_freq=N batch curves cannot be written from a tf.function compiled with "
                "XLA (jit_compile=True): summary writes are not XLA operations. Use "
                "update_freq='epoch' (epoch values work under XLA), call on_train_batch_end "
                "with the step's returned values outside the compiled step, or drop jit_compile."
            )

    def graph_batch(self) -> None:
        """Counts the batch in the graph and writes the window every N batches, in the graph.

        Every component the window holds is written, including those first
        logged by a later trace: names are read from a variable at run time.
        """
        window, names, capacity = self._window, self._names, self._window.capacity
        step = self._graph_step.assign_add(1)
        writer = self._writer.writer(TRAIN)

        def write() -> tf.Tensor:
            sums, counts = window.read_and_zero()
            tags = tf.strings.join([BATCH_PREFIX, names.read_value()])

            def body(i: tf.Tensor) -> tf.Tensor:
                tf.cond(
                    counts[i] > 0,
                    lambda: write_scalar(tags[i], sums[i] / counts[i], step),
                    lambda: tf.constant(False),
                )
                return i + 1

            with writer.as_default(), tf.summary.record_if(True):
                tf.while_loop(lambda i: i < capacity, body, [tf.constant(0)])
            return tf.constant(True)

        tf.cond((step - self._start) % self.every == 0, write, lambda: tf.constant(False))
        self._graph_used = True


def _fit_points(steps: list[int], walls: list[float], rows: list[dict[str, float]]) -> Points:
    """``fit``'s batch-curve values (one ``{tag: value}`` per point step) as ``Points``."""
    tags = sorted({tag for row in rows for tag in row})
    index = {tag: i for i, tag in enumerate(tags)}
    flat = [
        (step, wall, index[tag], value)
        for step, wall, row in zip(steps, walls, rows, strict=True)
        for tag, value in row.items()
    ]
    step, wall, tag, value = (np.asarray(column) for column in zip(*flat, strict=True))
    return Points(step, wall, tag, value, tags)
