"""``ComponentMean``: the Mean-style view of one component's running sums."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any, Protocol

import tensorflow as tf

from lossboard.accumulate.sums import Sums


class SumsOwner(Protocol):
    """What a ``ComponentMean`` reads and updates: its split's ``Accumulator``."""

    lock: threading.RLock

    def running(self) -> Sums | None: ...

    def add(self, logs: Mapping[str, Any], sample_weight: Any = None) -> None: ...

    def add_in_graph(self, logs: Mapping[str, Any], sample_weight: Any = None) -> None: ...

    def reset(self, index: int | None = None) -> None: ...


_F64 = tf.float64


class ComponentMean:
    """The float64 running mean of one loss component: ``tf.keras.metrics.Mean``-style.

    ``result()`` equals what a float64 Keras ``Mean`` fed the same values
    returns. ``total`` and ``count`` are the weighted sum and the sum of the
    weights over *elements*; for values of rank 1 that is what Keras' ``Mean``
    holds, but for rank 2 and up Keras first averages each example's row and
    counts examples, so its ``count`` is smaller by the row size (the result
    is the same when rows are unweighted). ``nonfinite`` counts the batches
    that held a NaN or an infinity. The numbers live in its split's
    running sums, one vector for all components, which is what keeps the
    per-batch cost flat; reading any of them first folds values still pending,
    so they are exact at any time. Read them eagerly (outside ``tf.function``).

    Examples:
        >>> import lossboard
        >>> logger = lossboard.LossLogger("logs/doc-mean")
        >>> logger.on_train_batch_end(0, {"loss": 2.0})
        >>> logger.on_train_batch_end(1, {"loss": [4.0, 6.0]})
        >>> mean = logger.metrics["loss"]
        >>> float(mean.result()), float(mean.count)
        (4.0, 3.0)
    """

    dtype = "float64"

    def __init__(self, name: str, owner: SumsOwner, index: int):
        self.name = name
        self._owner = owner
        self._index = index

    def _value(self, field: str) -> tf.Tensor:
        if not tf.executing_eagerly():
            raise RuntimeError(
                f"ComponentMean {self.name!r}: read results eagerly, outside tf.function "
                "(after the step returns); inside a step, log values with on_train_batch_end."
            )
        with self._owner.lock:  # a fold from another thread never races the loop's calls
            running = self._owner.running()
            if running is None or self._index >= running.size:
                return tf.constant(0.0, _F64)
            return getattr(running, field)[self._index]

    @property
    def total(self) -> tf.Tensor:
        """The weighted sum of every value so far (float64)."""
        return self._value("total")

    @property
    def count(self) -> tf.Tensor:
        """The sum of the weights so far: the number of elements when unweighted."""
        return self._value("weight")

    @property
    def nonfinite(self) -> tf.Tensor:
        """How many batches held a NaN or an infinity."""
        return self._value("nonfinite")

    def result(self) -> tf.Tensor:
        """The mean so far (0 before any data, as Keras' ``Mean``); safe from any thread."""
        with self._owner.lock:  # total and count of the same fold
            return tf.math.divide_no_nan(self.total, self.count)

    def update_state(self, values: Any, sample_weight: Any = None) -> None:
        """Adds values, exactly as logging ``{name: values}`` for this split does."""
        if tf.inside_function():
            self._owner.add_in_graph({self.name: values}, sample_weight)
        else:
            self._owner.add({self.name: values}, sample_weight)

    def reset_state(self) -> None:
        """Zeroes this component alone (eagerly)."""
        if not tf.executing_eagerly():
            raise RuntimeError(
                f"ComponentMean {self.name!r}: reset_state was called inside a tf.function; "
                "call it eagerly, between steps. The component is unchanged."
            )
        self._owner.reset(self._index)

    def __repr__(self) -> str:
        return f"<ComponentMean {self.name!r}>"
