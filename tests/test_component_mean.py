"""ComponentMean: a tf.keras.metrics.Mean-style view of one component, exact at any time."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from lossboard import LossLogger


def test_matches_a_float64_keras_mean(tmp_path):
    rng = np.random.default_rng(2)
    logger = LossLogger(tmp_path)
    reference = keras.metrics.Mean(dtype="float64")
    for n in (16, 16, 5):
        values, weights = rng.normal(size=n), rng.uniform(size=n)
        logger.on_train_batch_end(
            0, {"loss": tf.constant(values)}, sample_weight=tf.constant(weights)
        )
        reference.update_state(values, sample_weight=weights)
    mean = logger.metrics["loss"]
    assert float(mean.result()) == pytest.approx(float(reference.result()), rel=1e-12)
    assert float(mean.total) == pytest.approx(float(np.asarray(reference.total)), rel=1e-12)
    assert float(mean.count) == pytest.approx(float(np.asarray(reference.count)), rel=1e-12)
    assert float(mean.nonfinite) == 0.0


def test_update_state_and_reset_state_act_on_one_component(tmp_path):
    logger = LossLogger(tmp_path)
    logger.on_train_batch_end(0, {"a": 1.0, "b": 10.0})
    logger.metrics["a"].update_state([3.0, 5.0])  # as logging {"a": [3.0, 5.0]}
    assert float(logger.metrics["a"].result()) == 3.0
    logger.metrics["b"].reset_state()
    assert float(logger.metrics["b"].result()) == 0.0  # as Keras' Mean: 0 without data
    assert logger.on_epoch_end(0) == {"a": 3.0}  # b had no data left: not written


def test_reading_inside_tf_function_says_to_read_eagerly(tmp_path):
    logger = LossLogger(tmp_path)
    logger.on_train_batch_end(0, 1.0)
    mean = logger.metrics["loss"]
    with pytest.raises(RuntimeError, match="read results eagerly"):
        tf.function(lambda: mean.result())()


def test_two_dimensional_values_count_elements_where_keras_counts_rows(tmp_path):
    """Same result as Keras' Mean; ``count`` is over elements (Keras counts examples)."""
    rng = np.random.default_rng(3)
    logger = LossLogger(tmp_path)
    reference = keras.metrics.Mean(dtype="float64")
    batches = [rng.normal(size=(n, 4)) for n in (8, 8, 3)]
    for values in batches:
        logger.on_train_batch_end(0, {"pixels": tf.constant(values)})
        reference.update_state(values)
    mean = logger.metrics["pixels"]
    elements = np.concatenate(batches)
    assert float(mean.result()) == pytest.approx(elements.mean(), rel=1e-12)
    assert float(mean.result()) == pytest.approx(float(reference.result()), rel=1e-12)
    assert float(mean.count) == elements.size == 4 * float(np.asarray(reference.count))
    assert float(mean.total) == pytest.approx(elements.sum(), rel=1e-12)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_reset_state_after_a_nonfinite_value_zeroes_the_component(tmp_path, bad):
    logger = LossLogger(tmp_path)
    logger.on_train_batch_end(0, {"a": bad, "b": 1.0})
    logger.metrics["a"].reset_state()
    assert [float(logger.metrics["a"].total), float(logger.metrics["a"].count)] == [0.0, 0.0]
    assert float(logger.metrics["a"].nonfinite) == 0.0
    logger.on_train_batch_end(1, {"a": 3.0})
    assert logger.on_epoch_end(0) == {"a": 3.0, "b": 1.0}


@pytest.mark.parametrize("per_example", [False, True])
def test_results_read_from_another_thread_lose_nothing(
    tmp_path, read_events, monkeypatch, per_example
):
    """A progress display or watchdog reading ``result()`` in its own thread while two threads
    log: every batch is counted once, and the epoch on disk is NumPy's mean. The reader's folds
    are slowed down (as a busy machine does), so a fold that let the writers in would lose
    the batches they added during it."""
    import threading
    import time

    from lossboard.accumulate.pending import Pending

    sums = Pending.sums

    def slow_in_the_reader(self, *args, **kwargs):
        if threading.current_thread() is reader:
            time.sleep(0.002)
        return sums(self, *args, **kwargs)

    monkeypatch.setattr(Pending, "sums", slow_in_the_reader)
    logger = LossLogger(tmp_path / "run", verbose=0)
    batches, values = 1500, {0: 1.0, 1: 3.0}
    done = threading.Event()
    seen: list[float] = []
    errors: list[BaseException] = []

    def write(which: int) -> None:
        try:
            for step in range(batches):
                value = values[which]
                if per_example:
                    logger.on_train_batch_end(step, {"loss": np.full(2, value, np.float32)})
                else:
                    logger.on_train_batch_end(step, {"loss": value}, batch_size=2)
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    def read() -> None:
        try:
            while not done.is_set():
                mean = logger.metrics.get("loss")
                if mean is not None:
                    seen.append(float(mean.count))
                    float(mean.result())
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=write, args=(i,)) for i in values]
    reader = threading.Thread(target=read)
    reader.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    done.set()
    reader.join()
    assert not errors, errors
    assert float(logger.metrics["loss"].count) == 2 * 2 * batches
    assert seen and seen == sorted(seen)  # a reader never sees the count go back
    history = logger.on_epoch_end(0)
    logger.close()
    expected = np.mean(np.concatenate([np.full(2 * batches, v) for v in values.values()]))
    assert history["loss"] == pytest.approx(expected, rel=1e-12)
    assert read_events(tmp_path / "run", "train")["epoch_loss"][0] == pytest.approx(expected)


@pytest.mark.parametrize("call", ["update_state", "reset_state"])
def test_a_closed_loggers_metric_refuses_values_it_could_never_write(tmp_path, call):
    logger = LossLogger(tmp_path)
    logger.on_train_batch_end(logs={"loss": 1.0})
    logger.on_epoch_end(0)
    metric = logger.metrics["loss"]
    logger.close()
    with pytest.raises(RuntimeError, match=r"'loss'\.\w+: its LossLogger .* is closed"):
        metric.update_state(5.0) if call == "update_state" else metric.reset_state()
    assert float(metric.result()) == 0.0  # nothing taken in


def test_the_mean_is_over_elements_whatever_the_ranks_and_weights(tmp_path):
    """The documented rule: every element counts with its weight. A rank-2 batch with a
    scalar weight next to a weighted scalar: the float64 element-wise mean (Keras' Mean,
    which averages rows first, gives another number: the docstring says so)."""
    logger = LossLogger(tmp_path)
    logger.on_train_batch_end(logs={"loss": 0.0})
    metric = logger.metrics["loss"]
    metric.reset_state()
    batches = [(np.ones((4, 3)), 2.0), (np.float64(3.0), 0.5)]
    for values, weight in batches:
        metric.update_state(values, sample_weight=weight)
    total = sum(np.sum(v * w) for v, w in batches)
    count = sum(np.size(v) * w for v, w in batches)
    assert float(metric.result()) == total / count
    keras_mean = keras.metrics.Mean(dtype="float64")
    for values, weight in batches:
        keras_mean.update_state(values, sample_weight=weight)
    assert float(keras_mean.result()) != float(metric.result())  # as the docstring says
