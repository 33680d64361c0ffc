"""Batch-curve windows (``update_freq=N``): the sums of each N train batches, and where they go.

A window ends when the loop has logged N more train batches (``Accumulator.cut_window``:
its step and wall time are noted, nothing is computed). The next fold sums every window
that ended in the same ops as the epoch sums, and hands them to the *sink* the run gave
(``lossboard.logger.batch_curves.Unwritten``), which turns them into points on disk.

- ``BatchWindows``: the sink, the in-graph window sums and the component names the
  graph writes; ``split`` cuts a fold's sums into windows.
- ``NO_WINDOWS``: the null object of a logger without batch curves.

Each window reaches the sink once: a fold hands its windows over *before* it commits
(an interrupt between the two makes the next fold hand them again), and the sink keeps
a window's step only once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np
import tensorflow as tf

from lossboard.accumulate.graph_sums import GraphSums
from lossboard.accumulate.sums import Sums


class Windows(NamedTuple):
    """The sums of batch-curve windows that ended: row ``i`` is the window cut at ``step[i]``."""

    step: list[int]
    wall_time: list[float]
    names: list[str]  # component names, by column
    total: np.ndarray  # (windows, components) weighted sums
    weight: np.ndarray  # (windows, components) sums of the weights


#: Where a fold's ended windows go.
Sink = Callable[[Windows], None]


class Cut(NamedTuple):
    """The end of one window: the global batch it ends at, and when."""

    step: int
    wall_time: float


class BatchWindows:
    """The batch-curve side of the train split's accumulator.

    Args:
        sink: Called by a fold with the windows that ended since the last one (at
            least once each: a sink must keep each step once).
        capacity: Components the in-graph window sums hold.

    Examples:
        >>> seen = []
        >>> windows = BatchWindows(seen.append, capacity=4)
        >>> sums = Sums.of([1.0, 2.0, 4.0], [1.0, 1.0, 1.0], [0.0, 0.0, 0.0])  # 3 windows, 1 comp
        >>> added, open_, ended = windows.split(sums, [Cut(2, 0.0), Cut(4, 0.0)], ["loss"], None)
        >>> ended.step, ended.total.tolist(), float(open_.total[0])
        ([2, 4], [[1.0], [2.0]], 4.0)
    """

    enabled = True

    def __init__(self, sink: Sink, capacity: int):
        self.sink = sink
        #: Sums of in-graph calls since the last batch-curve point (the graph writes those).
        self.graph = GraphSums(capacity)
        #: Component names by index, read by the graph when it writes a point.
        with tf.init_scope():
            self.names = tf.Variable([""] * capacity, trainable=False, name="names")

    def name(self, comp: int, name: str) -> None:
        """Tells the graph the name of component ``comp`` (eagerly, even while tracing)."""
        if comp < self.graph.capacity:
            with tf.init_scope():
                self.names[comp].assign(name)

    def add_in_graph(self, rows: tf.Tensor, index: tf.Tensor) -> None:
        """Adds an in-graph call's sums to the window the graph writes."""
        self.graph.add_rows(rows, index)

    def carry(self, open_window: Sums | None, added: Sums) -> Sums | None:
        """The open window after a fold that ended none: ``added`` joins it."""
        return added if open_window is None else open_window + added

    def split(
        self, eager: Sums | None, cuts: list[Cut], names: list[str], open_window: Sums | None
    ) -> tuple[Sums, Sums, Windows]:
        """Cuts a fold's per-window sums into (everything folded, the window still open,
        the windows that ended). Changes nothing.

        Args:
            eager: Sums of ``len(cuts) + 1`` windows, window ``w``'s component ``c`` at
                ``w * len(names) + c`` (None when no value came in).
            cuts: Where each ended window ended.
            names: The components.
            open_window: The window open at the last fold: it ends first.
        """
        shape = (len(cuts) + 1, len(names))
        if eager is None:  # windows that ended without any value
            total_, weight, bad = (np.zeros(shape) for _ in range(3))
        else:
            total_, weight, bad = (v.numpy().reshape(shape) for v in eager)
        added = Sums.of(*(m.sum(axis=0) for m in (total_, weight, bad)))
        if open_window is not None:  # the window open at the last fold ends in this one
            for matrix, vector in zip((total_, weight), open_window, strict=False):
                values = vector.numpy()
                matrix[0, : len(values)] += values
        ended = Windows(
            [c.step for c in cuts],
            [c.wall_time for c in cuts],
            list(names),
            total_[:-1],
            weight[:-1],
        )
        still_open = Sums.of(total_[-1], weight[-1], bad[-1])
        return added, still_open, ended


class NoWindows:
    """No batch curves: a fold keeps no open window and hands nothing over."""

    enabled = False
    graph = None
    names = None

    # Each body returns: AutoGraph, which converts what a traced step calls, cannot
    # convert a function whose only statement is its docstring (it logs a warning).
    def name(self, comp: int, name: str) -> None:
        """Nothing to tell."""
        return None

    def add_in_graph(self, rows: tf.Tensor, index: tf.Tensor) -> None:
        """Nothing to add."""
        return None

    def carry(self, open_window: Sums | None, added: Sums) -> None:
        """No window to carry."""
        return None

    def split(self, eager, cuts, names, open_window):  # pragma: no cover - never cut
        raise RuntimeError("a window was cut on an accumulator without batch curves")

    def sink(self, windows: Windows) -> None:  # pragma: no cover - never cut
        raise RuntimeError("a window was cut on an accumulator without batch curves")


NO_WINDOWS = NoWindows()
