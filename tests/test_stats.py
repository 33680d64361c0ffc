"""`lossboard.compare.stats` against the references: rliable's metrics, SciPy's bootstrap.

rliable (``rliable.metrics``) and SciPy are test-only dependencies: the library computes the
same numbers with NumPy alone. IQM and the probability of improvement must be exactly equal
to rliable's on identical numbers; bootstrap interval endpoints must agree with
``scipy.stats.bootstrap(method="percentile")`` within the Monte Carlo error stated below.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as scipy_stats

from lossboard.compare.stats import (
    RESAMPLES,
    Spread,
    Spreads,
    holm,
    iqm,
    mean_interval,
    probability_of_improvement,
)

rliable_metrics = pytest.importorskip("rliable.metrics")

# Values with many ties and a wide range: eighths from -64 to 64, and arbitrary floats.
EIGHTHS = st.integers(-512, 512).map(lambda k: k / 8)
FLOATS = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)
SAMPLE = st.lists(st.one_of(EIGHTHS, FLOATS), min_size=1, max_size=40)


@settings(max_examples=300, deadline=None)
@given(SAMPLE)
def test_iqm_is_rliables_aggregate_iqm(values):
    runs_by_tasks = np.array(values, np.float64)[:, None]  # rliable: runs x tasks
    assert iqm(values) == rliable_metrics.aggregate_iqm(runs_by_tasks)


@settings(max_examples=300, deadline=None)
@given(SAMPLE, SAMPLE)
def test_probability_of_improvement_is_rliables(x, y):
    ours = probability_of_improvement(x, y)
    theirs = rliable_metrics.probability_of_improvement(
        np.array(x, np.float64)[:, None], np.array(y, np.float64)[:, None]
    )
    assert ours == theirs
    assert probability_of_improvement(y, x) == pytest.approx(1.0 - ours, abs=1e-15)


@pytest.mark.parametrize(
    "values",
    [[1.0, float("nan")], [float("inf"), 1.0], [float("-inf"), 2.0, 3.0], []],
    ids=["nan", "inf", "-inf", "empty"],
)
def test_a_diverged_or_empty_sample_has_nan_statistics(values):
    assert math.isnan(iqm(values))
    assert math.isnan(probability_of_improvement(values, [1.0, 2.0]))
    assert math.isnan(probability_of_improvement([1.0, 2.0], values))
    low, high = mean_interval(values)
    assert math.isnan(low) and math.isnan(high)


def test_one_run_has_no_interval():
    low, high = mean_interval([0.5])
    assert math.isnan(low) and math.isnan(high)


SAMPLES = {
    "2 runs": [0.31, 0.35],
    "3 runs": [0.2, 0.25, 0.4],
    "5 normal": list(np.random.default_rng(0).normal(1.0, 0.1, 5)),
    "10 skewed": list(np.random.default_rng(1).lognormal(0.0, 1.0, 10)),
    "20 with an outlier": [*np.random.default_rng(2).normal(0.5, 0.05, 19), 3.0],
    "50 uniform": list(np.random.default_rng(3).uniform(0, 1, 50)),
}


@pytest.mark.parametrize("values", SAMPLES.values(), ids=SAMPLES.keys())
def test_mean_interval_agrees_with_scipys_percentile_bootstrap(values):
    """Both are Monte Carlo estimates of the same two quantiles. The tolerance is stated
    from our own spread: 5 standard deviations of the endpoint over 40 seeds, times sqrt(2)
    for the difference of two independent estimates (plus 1e-12 for discrete cases, where
    both land on the same attainable mean)."""
    a = np.array(values)
    low, high = mean_interval(a)
    ref = scipy_stats.bootstrap(
        (a,), np.mean, n_resamples=RESAMPLES, method="percentile", random_state=12345
    ).confidence_interval
    draws = np.array([mean_interval(a, seed=s) for s in range(1, 41)])  # 40 x 2
    tolerance = 5 * math.sqrt(2) * draws.std(axis=0, ddof=1) + 1e-12
    assert abs(low - ref.low) <= tolerance[0]
    assert abs(high - ref.high) <= tolerance[1]
    assert a.min() - 1e-12 <= low <= a.mean() <= high <= a.max() + 1e-12


def test_mean_interval_is_reproducible_and_each_column_is_its_own_interval():
    rng = np.random.default_rng(4)
    matrix = rng.normal(size=(7, 150))  # runs x epochs: more columns than one chunk
    matrix[2, 5] = np.nan
    low, high = mean_interval(matrix)
    again = mean_interval(matrix)
    assert np.array_equal(low, again[0], equal_nan=True)
    assert np.array_equal(high, again[1], equal_nan=True)
    assert np.isnan(low[5]) and np.isnan(high[5]) and np.isfinite(np.delete(low, 5)).all()
    for column in (0, 64, 149):
        one = mean_interval(matrix[:, column])
        assert low[column] == pytest.approx(float(one[0]), rel=1e-12)
        assert high[column] == pytest.approx(float(one[1]), rel=1e-12)


def _holm_reference(p):
    """Holm (1979) from its definition: step down through the sorted p-values."""
    m = len(p)
    order = sorted(range(m), key=lambda i: p[i])
    adjusted = [0.0] * m
    for rank, i in enumerate(order):
        adjusted[i] = min(1.0, max((m - r) * p[order[r]] for r in range(rank + 1)))
    return adjusted


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(0, 1), min_size=1, max_size=12))
def test_holm_is_the_step_down_correction(p):
    assert holm(p) == pytest.approx(_holm_reference(p), abs=1e-15)


def test_holm_leaves_nan_out_of_the_count():
    assert holm([0.01, math.nan, 0.02])[0] == pytest.approx(0.02)
    assert math.isnan(holm([0.01, math.nan, 0.02])[1])


@pytest.mark.parametrize("runs", [2, 3, 4, 5, 6, 7, 12])
def test_few_runs_take_the_distinct_resamples_and_give_numpys_percentiles(runs):
    """2-6 runs are computed from their distinct resamples (``Resamples.percentiles``); the
    result is NumPy's percentile of all 10,000 resampled means, ties and NaN columns too."""
    from lossboard.compare.stats import _resamples

    rng = np.random.default_rng(runs)
    matrix = rng.normal(size=(runs, 150))
    matrix[:, 3] = 0.25  # every run equal
    matrix[:, 4] = np.round(matrix[:, 4])  # ties
    matrix[0, 5] = np.inf
    low, high = mean_interval(matrix)
    drawn = _resamples(runs, RESAMPLES, 0)
    assert (drawn.distinct is not None) == (runs <= 6)
    finite = np.isfinite(matrix).all(axis=0)
    ref = np.percentile(drawn.counts @ matrix[:, finite] / runs, [2.5, 97.5], axis=0)
    np.testing.assert_allclose(low[finite], ref[0], rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(high[finite], ref[1], rtol=1e-12, atol=1e-15)
    assert low[3] == high[3] == pytest.approx(0.25, abs=1e-15)
    assert np.isnan(low[5]) and np.isnan(high[5])


ROW_VALUES = st.one_of(
    EIGHTHS,
    FLOATS,
    st.sampled_from(
        [math.nan, math.inf, -math.inf, 1.7e308, -1.7e308, 1e154, -3e154, 5e-324, 0.1, 0.0, -0.0]
    ),
)


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 6).flatmap(
    lambda n: st.lists(st.lists(ROW_VALUES, min_size=n, max_size=n), max_size=12)
))  # fmt: skip
def test_spreads_of_rows_are_spread_of_each_row_bit_for_bit(rows):
    # The vectorized path must give Spread.of's numbers exactly (the same exactly rounded
    # sums), including NaN, infinities and sums beyond float range, which it hands over.
    n = len(rows[0]) if rows else 0
    got = Spreads.of_rows(np.array(rows, np.float64).reshape(len(rows), n))
    assert len(got) == len(rows)
    for i, row in enumerate(rows):
        expected = Spread.of(row)
        for name in ("n", "mean", "std", "low", "high"):
            a, b = getattr(got[i], name), getattr(expected, name)
            assert repr(a) == repr(b), (name, row, a, b)  # -0.0 and 0.0 told apart


def test_a_spread_whose_squares_leave_float_range_is_computed_scaled():
    # The exact sum of finite squares overflows (math.fsum raises there): the deviations are
    # scaled down first, so the std is a number, as NumPy's on values scaled by hand.
    values = [1e154, -1e154, 2e154, -2e154, 3e154, -3e154]
    expected = np.std(np.array(values) / 1e154, ddof=1) * 1e154
    for spread in (Spread.of(values), Spreads.of_rows(np.array([values]))[0]):
        assert spread.mean == 0.0 and spread.low == -3e154 and spread.high == 3e154
        assert spread.std == pytest.approx(expected, rel=1e-12)
