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
    assert float(mean.total) == pytest.approx(float(reference.total), rel=1e-12)
    assert float(mean.count) == pytest.approx(float(reference.count), rel=1e-12)
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
