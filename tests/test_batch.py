"""What a batch value may be: weights broadcast as tf.keras.metrics.Mean's do; clear errors."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from lossboard import LossLogger
from lossboard.batch import weight_shape_plan

SHAPES = [  # (values, sample_weight)
    ((), ()),
    ((5,), ()),
    ((5,), (5,)),
    ((5, 3), (5,)),
    ((5, 1), (5,)),
    ((5,), (5, 1)),
    ((5, 3), (5, 3)),
    ((5, 3), (1, 3)),
    ((2, 3, 4), (2,)),
]


@pytest.mark.parametrize("in_graph", [False, True])
@pytest.mark.parametrize("value_shape, weight_shape", SHAPES)
def test_weighted_mean_equals_keras_mean(tmp_path, value_shape, weight_shape, in_graph):
    rng = np.random.default_rng(len(value_shape) * 7 + len(weight_shape))
    reference = keras.metrics.Mean(dtype="float64")
    logger = LossLogger(tmp_path)
    log = tf.function(lambda v, w: logger.on_train_batch_end(0, {"x": v}, sample_weight=w))
    for _ in range(3):
        values = rng.normal(size=value_shape)
        weights = rng.uniform(0.1, 2.0, size=weight_shape)
        reference.update_state(values, sample_weight=weights)
        if in_graph:
            log(tf.constant(values), tf.constant(weights))
        else:
            logger.on_train_batch_end(
                0, {"x": tf.constant(values)}, sample_weight=tf.constant(weights)
            )
    assert logger.on_epoch_end(0)["x"] == pytest.approx(float(reference.result()), rel=1e-12)


@pytest.mark.parametrize(
    "value_shape, weight_shape",
    [((), (3,)), ((4,), (3,)), ((4, 3), (4, 2)), ((4,), (4, 2)), ((4, 3), (3,))],
)
def test_weights_that_do_not_fit_are_rejected(value_shape, weight_shape):
    with pytest.raises(ValueError, match=r"component 'x': sample_weight of shape"):
        weight_shape_plan("x", value_shape, weight_shape)
