"""Grouping runs into configurations, and the statistics, against NumPy and SciPy."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import special, stats

from lossboard.compare.configurations import group_runs
from lossboard.compare.stats import Spread, betainc, welch_t_test

SAMPLES = [
    ([1.0, 2.0, 3.0], [4.0, 5.0, 7.0]),
    ([0.31, 0.29, 0.35, 0.30], [0.33, 0.36]),
    ([10.0, 10.5], [10.2, 10.1, 10.9, 9.8, 10.0]),
    ([1e-4, 1.1e-4, 0.9e-4], [1.2e-4, 1.3e-4, 1.25e-4]),
    ([5.0, 5.0001, 4.9999], [-3.0, 2.0, 40.0]),  # very different variances
]


@pytest.mark.parametrize(("a", "b"), SAMPLES)
def test_welch_matches_scipy(a, b):
    ours = welch_t_test(a, b)
    ref = stats.ttest_ind(a, b, equal_var=False)
    assert ours.t == pytest.approx(ref.statistic, rel=1e-12)
    assert ours.df == pytest.approx(ref.df, rel=1e-12)
    assert ours.p == pytest.approx(ref.pvalue, rel=1e-9, abs=1e-15)


@pytest.mark.parametrize("a", [0.5, 1.0, 2.5, 7.0, 40.0])
@pytest.mark.parametrize("b", [0.5, 1.0, 3.0, 12.0])
@pytest.mark.parametrize("x", [0.001, 0.1, 0.5, 0.77, 0.999])
def test_incomplete_beta_matches_scipy(a, b, x):
    assert betainc(a, b, x) == pytest.approx(special.betainc(a, b, x), rel=1e-10, abs=1e-300)


@pytest.mark.filterwarnings("ignore:Precision loss:RuntimeWarning")
def test_degenerate_samples():
    assert math.isnan(welch_t_test([1.0], [2.0, 3.0]).p)  # n = 1 shows no spread
    assert math.isnan(welch_t_test([1.0, 1.0], [1.0, 1.0]).p)
    assert (
        welch_t_test([1.0, 1.0], [2.0, 2.0]).p
        == stats.ttest_ind([1.0, 1.0], [2.0, 2.0], equal_var=False).pvalue
    )


@pytest.mark.parametrize("values", [[0.3], [0.3, 0.7], [1.0, 2.0, 4.0, 8.0]])
def test_spread_is_numpy_mean_and_sample_std(values):
    s = Spread.of(values)
    assert s.mean == pytest.approx(np.mean(values), rel=1e-15)
    assert (s.low, s.high) == (min(values), max(values))
    if len(values) > 1:
        assert s.std == pytest.approx(np.std(values, ddof=1), rel=1e-12)
    else:
        assert math.isnan(s.std)


def test_nan_is_not_averaged_away():
    assert math.isnan(Spread.of([1.0, float("nan"), 2.0]).mean)


INF = float("inf")


@pytest.mark.parametrize(
    ("values", "mean", "low", "high"),
    [
        ([INF, -INF], math.nan, -INF, INF),  # one seed diverged up, one down: no mean
        ([INF, 1.0, 2.0], INF, 1.0, INF),
        ([-INF, -INF, 2.0], -INF, -INF, 2.0),
        ([INF, INF, -INF], math.nan, -INF, INF),
    ],
)
def test_infinite_values_give_an_infinite_or_nan_mean_never_an_error(values, mean, low, high):
    s = Spread.of(values)
    assert (s.n, s.low, s.high) == (len(values), low, high)
    assert s.mean == mean or (math.isnan(mean) and math.isnan(s.mean))
    assert math.isnan(s.std)  # no spread around an infinity


@pytest.mark.parametrize("values", [[1e308, -1e308], [1e308, 1e308, -1e308], [1.7e308, 1.7e308]])
def test_finite_values_near_float_range_keep_a_finite_mean_and_std(values):
    exact = np.array(values, np.longdouble)  # 80-bit: room for the sums
    s = Spread.of(values)
    assert s.mean == pytest.approx(float(exact.mean()), rel=1e-15)
    assert s.std == pytest.approx(float(exact.std(ddof=1)), rel=1e-12)


HPARAMS = {
    "a0": {"lr": 0.1, "seed": 0, "opt": "adam"},
    "a1": {"lr": 0.1, "seed": 1, "opt": "adam"},
    "b0": {"lr": 0.01, "seed": 0, "opt": "adam"},
    "c0": {"lr": 0.01, "seed": 0, "opt": "sgd", "wd": 1e-4},
    "c1": {"lr": 0.01, "seed": 1, "opt": "sgd", "wd": 1e-4, "run_id": 9},
}


@pytest.mark.parametrize(
    ("over", "expected"),
    [
        (["seed"], [["a0", "a1"], ["b0"], ["c0"], ["c1"], ["plain"]]),
        (["seed", "run_id"], [["a0", "a1"], ["b0"], ["c0", "c1"], ["plain"]]),
        (["seed", "opt", "wd", "run_id"], [["a0", "a1"], ["b0", "c0", "c1"], ["plain"]]),
    ],
)
def test_group_runs(over, expected):
    configs = group_runs(HPARAMS, [*HPARAMS, "plain"], over)
    assert sorted(c.runs for c in configs) == sorted(expected)
    for c in configs:
        if c.runs != ["plain"]:
            assert not set(over) & set(c.hparams)
    names = [c.name for c in configs]
    assert len(set(names)) == len(names) and "plain" in names


def test_group_names_and_only_over_keys():
    configs = group_runs({"x": {"seed": 0}, "y": {"seed": 1}}, ["x", "y"], ["seed"])
    assert [(c.name, c.runs, c.hparams) for c in configs] == [("all", ["x", "y"], {})]


def test_unknown_over_key_says_which_exist():
    with pytest.raises(ValueError, match=r"--over sed: no run has that hparam.*lr, opt, run_id"):
        group_runs(HPARAMS, HPARAMS, ["sed"])
