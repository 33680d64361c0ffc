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
    #: Why values are refused now (its logger was closed), or None.
    closed: str | None

    def running(self) -> Sums | None: ...

    def add(self, logs: Mapping[str, Any], sample_weight: Any = None) -> None: ...

    def add_in_graph(self, logs: Mapping[str, Any], sample_weight: Any = None) -> None: ...

    def reset(self, index: int | None = None) -> None: ...


_F64 = tf.float64


class ComponentMean:
    """The float64 running mean of one loss component: ``tf.keras.metrics.Mean``-style.

    It is an *element-wise* mean: ``total`` and ``count`` are the weighted sum and
    the sum of the weights over every element logged. For scalars and values of
    rank 1, ``result()`` equals a float64 Keras ``Mean`` fed the same values. For
    rank 2 and up Keras first averages each example's row and counts examples:
    the results agree while every batch has the same row size and no weights, and
    differ once batches of different ranks or row sizes, or weights, are mixed
    (a weight then counts once per element here, once per row in Keras).
    ``nonfinite`` counts the batches
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
        """Adds values, exactly as logging ``{name: values}`` for this split does.

        Raises:
            RuntimeError: When its logger was closed (the values could never be written).
        """
        self._refuse_if_closed("update_state")
        if tf.inside_function():
            self._owner.add_in_graph({self.name: values}, sample_weight)
        else:
            self._owner.add({self.name: values}, sample_weight)

    def reset_state(self) -> None:
        """Zeroes this component alone (eagerly)."""
        self._refuse_if_closed("reset_state")
        if not tf.executing_eagerly():
            raise RuntimeError(
                f"ComponentMean {self.name!r}: reset_state was called inside a tf.function; "
                "call it eagerly, between steps. The component is unchanged."
            )
        self._owner.reset(self._index)

    def _refuse_if_closed(self, where: str) -> None:
        if self._owner.closed is not None:
            raise RuntimeError(
                f"ComponentMean {self.name!r}.{where}: {self._owner.closed}; create a new "
                "LossLogger on the same directory to continue the run."
            )

    def __repr__(self) -> str:
        return f"<ComponentMean {self.name!r}>"
