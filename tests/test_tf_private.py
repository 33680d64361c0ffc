"""The private TensorFlow API lossboard uses (lossboard/tf_private.py) is still there.

When a TensorFlow release renames one, this fails first; lossboard itself falls back to the
public, slower equivalent, so the numbers stay right (the per-batch cost rises).
"""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from lossboard.accumulate import tf_private


def test_the_fast_path_api_is_present():
    assert tf_private.HAS_FAST_PATH, f"TensorFlow {tf.__version__} moved EagerTensor internals"


@pytest.mark.parametrize(
    "value", [tf.constant(1.5), tf.constant([1, 2, 3], tf.int64), tf.zeros((2, 0, 3), tf.bfloat16)]
)
def test_private_and_public_reads_agree(value):
    assert tf_private.is_eager_tensor(value)
    assert tf_private.dtype_enum(value) == value.dtype.as_datatype_enum
    assert tuple(tf_private.shape_tuple(value)) == tuple(value.shape)
    assert tf_private._public_dtype_enum(value) == tf_private.dtype_enum(value)
    assert tf_private._public_shape_tuple(value) == tuple(tf_private.shape_tuple(value))


@pytest.mark.parametrize("value", [1.0, np.float32(2.0), np.ones(3), tf.Variable(1.0)])
def test_values_that_are_not_eager_tensors_raise_type_error(value):
    assert not tf_private.is_eager_tensor(value)
    with pytest.raises(TypeError):
        tf_private.dtype_enum(value)
    with pytest.raises(TypeError):
        tf_private._public_dtype_enum(value)


def test_not_converted_functions_run_as_written_inside_tf_function():
    """AutoGraph leaves a marked function alone: a Python ``if`` on a tensor then fails in
    the graph, as it would under ``do_not_convert`` (converted, it would become a tf.cond)."""

    def branchy():
        def absolute(x):
            if x > 0:
                return x
            return -x

        return absolute

    marked = tf_private.not_converted(branchy())
    assert tf_private.not_converted(marked) is marked  # no wrapper left on the call path

    @tf.function
    def uses(x):
        return marked(x)

    with pytest.raises(tf.errors.OperatorNotAllowedInGraphError):
        uses(tf.constant(1.0))
    assert tf.function(branchy())(tf.constant(-2.0)).numpy() == 2.0  # converted when not marked


def test_join_matches_stack_and_concat_on_the_values_device():
    """(Where no device scope says otherwise.)"""
    scalars = [tf.constant(float(i), tf.float64) for i in range(5)]
    vectors = [tf.constant([i, i + 1], tf.int32) for i in range(3)]
    packed = tf_private.join(scalars, 0, tf.float64.as_datatype_enum)
    joined = tf_private.join(vectors, 1, tf.int32.as_datatype_enum)
    np.testing.assert_array_equal(packed.numpy(), tf.stack(scalars).numpy())
    np.testing.assert_array_equal(joined.numpy(), tf.concat(vectors, 0).numpy())
    assert packed.device == scalars[0].device and joined.device == vectors[0].device
    assert tf_private.join(vectors[:1], 1, tf.int32.as_datatype_enum) is vectors[0]


@pytest.mark.parametrize("dtype", [tf.float16, tf.bfloat16, tf.float32, tf.float64, tf.int32])
@pytest.mark.parametrize("shape", [(5000,), (16, 300), (4, 8, 70), (2, 3, 4, 100)])
def test_sum_f64_is_the_float64_sum_of_every_element(dtype, shape):
    rng = np.random.default_rng(len(shape))
    value = tf.cast(tf.constant(rng.normal(size=shape) * 50), dtype)
    total = tf_private.sum_f64(value)
    assert total.dtype == tf.float64 and total.shape == ()
    reference = tf.cast(value, tf.float64).numpy().sum()
    assert total.numpy() == pytest.approx(reference, rel=1e-12)


@pytest.mark.parametrize("dtype", [tf.float16, tf.bfloat16, tf.float32, tf.float64, tf.int32])
@pytest.mark.parametrize("skip", [False, True])
@pytest.mark.parametrize("bad_weight", [None, np.nan, np.inf])
def test_column_sums_match_a_float64_reference(dtype, skip, bad_weight):
    rng = np.random.default_rng(7)
    rows, cols = 37, 5
    matrix = np.round(rng.normal(size=(rows, cols)) * 8)
    if dtype != tf.int32:  # non-finite values in some rows of some columns
        matrix[3, 1], matrix[10, 4], matrix[11, 4] = np.nan, np.inf, -np.inf
    weights = rng.integers(1, 5, size=(rows, 1)).astype(np.float64)
    if bad_weight is not None:
        weights[20, 0] = bad_weight
    value = tf.cast(tf.constant(matrix.reshape(-1)), dtype)
    total, counts, nonfinite = tf_private.column_sums(value, rows, weights, skip)
    x = tf.cast(value, tf.float64).numpy().reshape(rows, cols)
    w = np.broadcast_to(weights, x.shape)
    bad = ~(np.isfinite(x) & np.isfinite(w))
    if skip:
        x, w = np.where(bad, 0.0, x), np.where(bad, 0.0, w)
        np.testing.assert_allclose(counts.numpy(), w.sum(0), rtol=1e-12)
    else:
        assert counts is None  # the caller's: the sum of the row weights
    with np.errstate(invalid="ignore"):
        np.testing.assert_allclose(total.numpy(), (x * w).sum(0), rtol=1e-12)
    np.testing.assert_array_equal(nonfinite.numpy(), bad.sum(0))


def test_an_interrupt_while_column_sums_makes_its_constants_leaves_it_usable(monkeypatch):
    monkeypatch.setattr(tf_private, "_SUM_CONSTANTS", [])
    original = tf_private._host_constant

    def interrupted(value):
        monkeypatch.setattr(tf_private, "_host_constant", original)  # once
        raise KeyboardInterrupt

    monkeypatch.setattr(tf_private, "_host_constant", interrupted)
    value, weights = tf.constant([1.0, 2.0, 3.0, 4.0]), np.ones((2, 1))
    with pytest.raises(KeyboardInterrupt):
        tf_private.column_sums(value, 2, weights, False)
    total, _, nonfinite = tf_private.column_sums(value, 2, weights, False)
    assert total.numpy().tolist() == [4.0, 6.0] and nonfinite.numpy().tolist() == [0.0, 0.0]


def _every_path(seed: int) -> dict:
    """Sums of batches that take every path of the accumulator: steady scalar rows (Pack, the
    column-sum fold), rank-1 rows (ConcatV2), weighted entries, values of 2048+ elements
    (sum_f64), NaNs under "skip". Values are quarters: every order of summation is exact."""
    from lossboard.accumulate.accumulator import Accumulator

    rng = np.random.default_rng(seed)
    quarters = lambda *shape: (rng.integers(-40, 41, size=shape) / 4).astype(np.float32)  # noqa: E731
    acc = Accumulator(nonfinite="skip")
    for step in range(600):
        acc.add({"a": tf.constant(quarters()), "b": tf.constant(quarters(), tf.float64)})
        acc.add({"v": tf.constant(quarters(3))})
        if step % 50 == 0:
            big = quarters(64, 64)
            if step == 100:
                big[3, 4] = np.nan
            acc.add({"big": tf.constant(big), "w": tf.constant(quarters(4))}, sample_weight=0.5)
        if step % 128 == 0:
            acc.fold()
    return acc.read()


def test_every_fallback_gives_the_same_sums(monkeypatch):
    """The same batches with lossboard's private TensorFlow calls and with their public
    fallbacks (as on a TensorFlow release that moved them): identical sums, weights and
    non-finite counts; no private op runs on the public path."""
    calls: list[str] = []
    execute = tf_private._execute
    monkeypatch.setattr(tf_private, "_execute", lambda *a: calls.append(a[0]) or execute(*a))
    private = _every_path(seed=3)
    assert {"Pack", "ConcatV2", "Sum", "Cast"} <= set(calls)  # the fast paths ran

    def refused(*args):
        raise AssertionError(f"private op {args[0]} ran on the public path")

    monkeypatch.setattr(tf_private, "_execute", refused)
    tf_private.use_public_api()
    try:
        public = _every_path(seed=3)
    finally:
        tf_private.use_public_api(False)
    assert public == private  # component by component: (mean, count, nonfinite)
    assert set(public) == {"a", "b", "v", "big", "w"} and public["big"].nonfinite == 1
