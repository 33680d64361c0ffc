"""Batch curves (``update_freq=N``): the mean of every N train batches, at step = global batch.

``BatchCount`` only counts train batches (``update_freq="epoch"``);
``BatchCurves`` also writes ``batch_<name>`` every N of them, from eager
calls, from calls inside a ``tf.function``, and from ``model.fit``'s logs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import tensorflow as tf

from lossboard import arguments, tf_private
from lossboard.accumulate import Accumulator
from lossboard.layout import BATCH_PREFIX, TRAIN, batch_tag
from lossboard.writer import RunWriter, write_scalar


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

    def graph_batch(self) -> None:
        """While tracing a train batch inside a ``tf.function``: counts it in the graph."""
        if self._strategy.num_replicas_in_sync == 1:
            self._graph_step.assign_add(1)
            self._graph_used = True

    def fit_batch(self, logs: Mapping[str, Any] | None) -> None:
        """After a ``model.fit`` train batch (``logs`` are Keras' running means)."""
        self.batches += 1


class BatchCurves(BatchCount):
    """Writes ``batch_<name>``, the mean over each window of ``every`` train batches.

    Args:
        every: N, the window length in train batches.
        train: The train split's accumulator (made with ``batch_window=True``).
        writer: The run's writer.
        strategy: The ``tf.distribute`` strategy of the logger.
        start: Batches counted before (the last ``batch_*`` step on disk).
    """

    def __init__(
        self,
        every: int,
        train: Accumulator,
        writer: RunWriter,
        strategy: tf.distribute.Strategy,
        start: int = 0,
    ):
        super().__init__(start, strategy)
        if train.graph_window is None or train.name_vector is None:
            raise ValueError("BatchCurves needs an Accumulator made with batch_window=True.")
        self._names = train.name_vector
        self.every = every
        self._train = train
        self._window = train.graph_window
        self._writer = writer

    def eager_batch(self) -> None:
        self.batches += 1
        if self.batches % self.every == 0:
            means = self._train.take_window()
            self._writer.scalars(
                TRAIN, {batch_tag(k): v for k, v in means.items()}, step=self.batches
            )

    def fit_batch(self, logs: Mapping[str, Any] | None) -> None:
        self.batches += 1
        if self.batches % self.every == 0 and logs:
            numbers = {k: arguments.scalar(v) for k, v in logs.items()}
            values = {batch_tag(k): v for k, v in numbers.items() if v is not None}
            self._writer.scalars(TRAIN, values, step=self.batches)

    def check_graph(self) -> None:
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

        tf.cond(step % self.every == 0, write, lambda: tf.constant(False))
        self._graph_used = True
