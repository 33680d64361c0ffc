"""What a batch value may be: weights broadcast as tf.keras.metrics.Mean's do; clear errors."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

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


@pytest.mark.parametrize("in_graph", [False, True])
@pytest.mark.parametrize(
    "values, weight",
    [
        ([2**70], None),  # beyond int64: NumPy keeps it as an object
        ([2**70 + 1, 3], None),  # rounds to the nearest float64, as an int64 beyond 2**53
        ([Fraction(1, 3), Fraction(2, 3)], None),
        ([Decimal("0.1"), 2**64], None),
        ([[Fraction(1, 4), 2**65]], None),  # a per-example list of them
        ([1.5], 2**70),  # the same rule for a weight
        ([0.5, 2.5], Fraction(1, 3)),
    ],
    ids=["2**70", "2**70+1", "Fraction", "Decimal and 2**64", "list", "int weight", "Fraction w"],
)
def test_python_numbers_numpy_keeps_as_objects_are_their_float(
    tmp_path, read_events, values, weight, in_graph
):
    """2**70 and fractions.Fraction were refused as "object data": they are real numbers and
    are summed as float(value), the nearest float64 (as NumPy's int64 beyond 2**53 is)."""
    logger = LossLogger(tmp_path, verbose=0)
    record = tf.function(logger.on_train_batch_end) if in_graph else logger.on_train_batch_end
    for value in values:
        record(0, {"x": value}, sample_weight=weight)
    floats = [np.asarray([float(v) for v in np.ravel(np.array(x, object))]) for x in values]
    expected = np.mean([f.mean() for f in floats])  # every batch has the same weight
    assert logger.on_epoch_end(0)["x"] == pytest.approx(expected, rel=1e-15)
    logger.close()
    assert read_events(tmp_path, "train")["epoch_x"][0] == np.float32(expected)


@pytest.mark.parametrize(
    "value, error, message",
    [
        (10**400, ValueError, "got an int of about 400 digits: beyond float64's range"),
        ([1.0, 10**5000], ValueError, "list of 2 values holding an int of about 5000 digits"),
        ([1.0, Fraction(-(10**400), 3)], ValueError, "beyond float64's range"),
        (object(), TypeError, r"\(object\): not a real number"),
        ([1.0, None], TypeError, r"holds None \(NoneType\), which is not a real number"),
        ([2**70, 1j], TypeError, "complex values have no mean"),
        (Decimal("sNaN"), TypeError, "not a real number"),
    ],
    ids=["10**400", "10**5000 in a list", "Fraction", "object", "None in a list", "1j", "sNaN"],
)
def test_python_values_that_are_no_float64_say_what_was_given(tmp_path, value, error, message):
    with LossLogger(tmp_path, verbose=0) as logger:
        logger.on_train_batch_end(0, {"x": 2.0})
        with pytest.raises(error, match=message) as info:
            logger.on_train_batch_end(1, {"x": value})
        assert "component 'x'" in str(info.value) and "object data" not in str(info.value)
        assert "Nothing from this batch was recorded" in str(info.value)
        assert logger.on_epoch_end(0) == {"x": 2.0}


def test_a_masked_array_is_refused_with_what_to_pass(tmp_path):
    """Its mask would be dropped and the masked values averaged in (34.7, not 2.0)."""
    logger = LossLogger(tmp_path)
    logger.on_train_batch_end(logs={"loss": 2.0})
    masked = np.ma.array([1.0, 100.0, 3.0], mask=[0, 1, 0])
    with pytest.raises(TypeError, match=r"component 'loss': got a NumPy masked array.*compressed"):
        logger.on_train_batch_end(logs={"loss": masked})
    logger.on_train_batch_end(logs={"loss": masked.compressed()})  # as the message says
    assert logger.on_epoch_end(0) == {"loss": 2.0}
