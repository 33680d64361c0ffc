"""What a batch value may be: weights broadcast as tf.keras.metrics.Mean's do; clear errors."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from lossboard import LossLogger
from lossboard.accumulate.inputs import weight_shape_plan

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
    total = count = 0.0
    for _ in range(3):
        values = rng.normal(size=value_shape)
        weights = rng.uniform(0.1, 2.0, size=weight_shape)
        reference.update_state(values, sample_weight=weights)
        v, w = _numpy_broadcast(values, weights)
        total, count = total + (v * w).sum(), count + w.sum()
        if in_graph:
            log(tf.constant(values), tf.constant(weights))
        else:
            logger.on_train_batch_end(
                0, {"x": tf.constant(values)}, sample_weight=tf.constant(weights)
            )
    mean = logger.on_epoch_end(0)["x"]
    assert mean == pytest.approx(total / count, rel=1e-12)
    keras_bug = weight_shape == (1, 3) and KERAS < (3, 4)  # 3.3 divides before broadcasting
    if not keras_bug:
        assert mean == pytest.approx(float(reference.result()), rel=1e-12)


KERAS = tuple(int(p) for p in keras.__version__.split(".")[:2])


def _numpy_broadcast(values, weights):
    """Keras' Mean rule in NumPy: squeeze a trailing 1, expand a lower-rank weight, broadcast."""
    v, w = np.asarray(values, np.float64), np.asarray(weights, np.float64)
    if v.ndim == w.ndim + 1 and v.shape[-1] == 1:
        v = v[..., 0]
    elif w.ndim == v.ndim + 1 and w.shape[-1] == 1:
        w = w[..., 0]
    w = w.reshape(w.shape + (1,) * (v.ndim - w.ndim))
    return v, np.broadcast_to(w, v.shape)


@pytest.mark.parametrize(
    "value_shape, weight_shape",
    [((), (3,)), ((4,), (3,)), ((4, 3), (4, 2)), ((4,), (4, 2)), ((4, 3), (3,))],
)
def test_weights_that_do_not_fit_are_rejected(value_shape, weight_shape):
    with pytest.raises(ValueError, match=r"component 'x': sample_weight of shape"):
        weight_shape_plan("x", value_shape, weight_shape)
