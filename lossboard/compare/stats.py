"""Statistics over a few seeds, without SciPy.

- ``Spread``: mean, sample std, min and max; ``Spreads``: those of each row of a matrix.
- ``welch_t_test`` and ``holm``: Welch's t-test of two samples, Holm's step-down correction.
- ``iqm``: the interquartile mean (25% trimmed mean), as rliable's ``aggregate_iqm``.
- ``mean_interval``: a percentile-bootstrap interval of the mean over runs.
- ``probability_of_improvement``: ``P(X > Y)`` over all pairs of runs, ties counting half,
  as rliable's ``probability_of_improvement``.

rliable (Agarwal et al., NeurIPS 2021) and SciPy are the references the tests hold these to.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Spread:
    """Mean and sample standard deviation (``ddof=1``) of a few values.

    Examples:
        >>> s = Spread.of([1.0, 2.0, 3.0])
        >>> (s.n, s.mean, s.std)
        (3, 2.0, 1.0)
    """

    n: int
    mean: float
    std: float  # NaN when n < 2: one run shows no spread
    low: float
    high: float

    @classmethod
    def of(cls, values: Sequence[float]) -> Spread:
        """The spread of ``values`` (NaN values propagate: a diverged run is not hidden).

        With an infinite value the mean is that infinity (NaN when both signs occur) and
        the std is NaN; min and max stay what they are.

        Examples:
            >>> s = Spread.of([float("inf"), float("-inf")])
            >>> (s.mean, s.std, s.low, s.high)
            (nan, nan, -inf, inf)
        """
        n = len(values)
        if n == 0 or any(math.isnan(v) for v in values):
            return cls(n, math.nan, math.nan, math.nan, math.nan)
        low, high = min(values), max(values)
        if math.isinf(low) or math.isinf(high):
            total = math.fsum(v for v in values if math.isinf(v)) if low != -high else math.nan
            return cls(n, total, math.nan, low, high)
        try:
            mean = math.fsum(values) / n
        except OverflowError:  # the exact sum leaves float range: average the shares instead
            mean = math.fsum(v / n for v in values)
        std = math.nan
        if n > 1:
            squares = _fsum_or_inf((v - mean) * (v - mean) for v in values)
            if math.isinf(squares):  # near float's range: deviations scaled, halved first
                scale = max(abs(low), abs(high))
                squares = math.fsum(((v / 2 - mean / 2) / scale) ** 2 for v in values)
                std = scale * (2 * math.sqrt(squares / (n - 1)))
            else:
                std = math.sqrt(squares / (n - 1))
        return cls(n, mean, std, low, high)


def _fsum_or_inf(values: Iterable[float]) -> float:
    """``math.fsum``, or inf when the exact sum of finite values leaves float range (where
    ``fsum`` raises): the callers then scale the values down."""
    try:
        return math.fsum(values)
    except OverflowError:
        return math.inf


@dataclass(frozen=True)
class Spreads:
    """The ``Spread`` of each row of a matrix, as columns: ``Spread.of`` of every row, bit
    for bit (the same exactly rounded sums), without a Python object per row.

    Attributes:
        n: The values per row (runs).
        mean: One per row.
        std: Sample std (NaN when ``n < 2``).
        low: Minimum.
        high: Maximum.

    Examples:
        >>> s = Spreads.of_rows(np.array([[1.0, 2.0, 3.0], [0.5, 0.5, np.nan]]))
        >>> s.mean.tolist(), s.std.tolist()[0], s[1]
        ([2.0, nan], 1.0, Spread(n=3, mean=nan, std=nan, low=nan, high=nan))
    """

    n: int
    mean: np.ndarray
    std: np.ndarray
    low: np.ndarray
    high: np.ndarray

    def __len__(self) -> int:
        return len(self.mean)

    def __getitem__(self, i: int) -> Spread:
        return Spread(
            self.n, float(self.mean[i]), float(self.std[i]), float(self.low[i]),
            float(self.high[i]),
        )  # fmt: skip

    @classmethod
    def of_rows(cls, matrix: np.ndarray) -> Spreads:
        """The spread of each row of ``matrix`` (rows x values), as ``Spread.of`` gives it.

        Fast path: rows of finite values (nearly all) take NumPy's min, max, deviations and
        square root, which are IEEE's exact operations as in Python, and ``math.fsum`` per
        row for the two sums; a row with a NaN or an infinity, or whose exact sum leaves
        float range, is left to ``Spread.of``.
        """
        m = np.asarray(matrix, dtype=np.float64)
        if m.ndim != 2:
            raise ValueError(f"expected a matrix of rows x values; got shape {m.shape}.")
        rows, n = m.shape
        mean, std = np.full(rows, np.nan), np.full(rows, np.nan)
        low, high = mean.copy(), mean.copy()
        slow = np.zeros(rows, bool)
        if n:
            slow |= ~np.isfinite(m).all(axis=1)
        fast = np.flatnonzero(~slow) if n else np.zeros(0, np.int64)
        if len(fast):
            values = m[fast]
            low[fast], high[fast] = values.min(axis=1), values.max(axis=1)
            try:
                means = np.array([math.fsum(row) for row in values.tolist()]) / n
            except OverflowError:
                means = None
            if means is None:
                slow[fast] = True
            else:
                mean[fast] = means
                if n > 1:
                    with np.errstate(over="ignore"):  # an infinite square: Spread.of's way
                        deviation = values - means[:, None]
                        squared = (deviation * deviation).tolist()
                    squares = np.array([_fsum_or_inf(row) for row in squared])
                    huge = np.isinf(squares)
                    std[fast] = np.sqrt(squares / (n - 1))
                    slow[fast[huge]] = True
        # A zero's sign: NumPy's min and max may pick -0.0 where Python's pick the first.
        slow |= (low == 0) | (high == 0)
        for i in np.flatnonzero(slow).tolist():
            one = Spread.of(m[i].tolist())
            mean[i], std[i], low[i], high[i] = one.mean, one.std, one.low, one.high
        return cls(n, mean, std, low, high)


def _beta_fraction(a: float, b: float, x: float) -> float:
    """The continued fraction of the incomplete beta function (modified Lentz)."""
    tiny = 1e-300
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1.0)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    result = d
    for m in range(1, 400):
        for numerator in (
            m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
            -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1)),
        ):
            d = 1.0 + numerator * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + numerator / c
            c = c if abs(c) > tiny else tiny
            result *= d * c
        if abs(d * c - 1.0) < 1e-15:
            break
    return result


def betainc(a: float, b: float, x: float) -> float:
    """The regularized incomplete beta function ``I_x(a, b)``.

    Examples:
        >>> round(betainc(2.0, 3.0, 0.4), 6)  # scipy.special.betainc(2, 3, 0.4)
        0.5248
    """
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_front = (
        math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    )
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(log_front) * _beta_fraction(a, b, x) / a
    return 1.0 - math.exp(log_front) * _beta_fraction(b, a, 1.0 - x) / b


def t_two_sided_p(t: float, df: float) -> float:
    """``P(|T| >= |t|)`` for Student's t with ``df`` degrees of freedom."""
    return betainc(df / 2.0, 0.5, df / (df + t * t))


@dataclass(frozen=True)
class WelchTest:
    """Welch's unequal-variances t-test of two samples (two-sided)."""

    t: float
    df: float
    p: float


def welch_t_test(a: Sequence[float], b: Sequence[float]) -> WelchTest:
    """Welch's t-test, as ``scipy.stats.ttest_ind(a, b, equal_var=False)``.

    The p-value is NaN when either sample has fewer than two values, or when neither
    varies and their means are equal; it is 0 when neither varies and the means differ.

    Examples:
        >>> round(welch_t_test([1.0, 2.0, 3.0], [4.0, 5.0, 7.0]).p, 4)
        0.0419
    """
    sa, sb = Spread.of(a), Spread.of(b)
    if sa.n < 2 or sb.n < 2 or math.isnan(sa.std) or math.isnan(sb.std):
        return WelchTest(math.nan, math.nan, math.nan)
    va, vb = sa.std**2 / sa.n, sb.std**2 / sb.n
    if va + vb == 0.0:
        if sa.mean == sb.mean:
            return WelchTest(math.nan, math.nan, math.nan)
        return WelchTest(math.copysign(math.inf, sa.mean - sb.mean), math.nan, 0.0)
    t = (sa.mean - sb.mean) / math.sqrt(va + vb)
    df = (va + vb) ** 2 / (va**2 / (sa.n - 1) + vb**2 / (sb.n - 1))
    return WelchTest(t, df, t_two_sided_p(t, df))


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values (NaN values stay NaN and are not counted).

    The adjusted p-value of the i-th smallest of ``m`` p-values is the largest of
    ``(m - j) * p_(j)`` over ``j <= i`` (0-based), capped at 1: rejecting where it is below
    alpha keeps the family-wise error rate at alpha.

    Examples:
        >>> holm([0.25, 0.5, 0.125])  # as statsmodels' multipletests(method="holm")
        [0.5, 0.5, 0.375]
    """
    known = sorted((p, i) for i, p in enumerate(p_values) if not math.isnan(p))
    out = [math.nan] * len(p_values)
    running = 0.0
    for j, (p, i) in enumerate(known):
        running = max(running, min(1.0, (len(known) - j) * p))
        out[i] = running
    return out


def iqm(values: Sequence[float] | np.ndarray) -> float:
    """The interquartile mean: the mean of the middle half (25% of the values cut at each end).

    Equal to rliable's ``metrics.aggregate_iqm`` and ``scipy.stats.trim_mean(values, 0.25)``
    (the same partition, then NumPy's mean). With fewer than 4 values nothing is cut.

    Examples:
        >>> iqm([1.0, 2.0, 3.0, 100.0])
        2.5
    """
    a = np.asarray(values, dtype=np.float64).ravel()
    if a.size == 0 or not np.isfinite(a).all():
        return math.nan
    cut = int(0.25 * a.size)
    middle = np.partition(a, (cut, a.size - cut - 1))[cut : a.size - cut]
    return float(np.mean(middle))


#: Bootstrap resamples of ``mean_interval`` (rliable uses 2,000 to 50,000).
RESAMPLES = 10_000
#: The confidence level of ``mean_interval``.
LEVEL = 0.95
_COLUMNS = 64  # epochs (or samples) resampled at a time: 5 MB of means at 10,000 resamples


def mean_interval(
    values: Sequence[float] | np.ndarray,
    level: float = LEVEL,
    resamples: int = RESAMPLES,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """A percentile-bootstrap confidence interval of the mean over runs.

    Runs are drawn with replacement ``resamples`` times (NumPy's ``default_rng(seed)``, so
    the interval is the same every time); the interval holds the middle ``level`` of the
    resampled means, as ``scipy.stats.bootstrap(method="percentile")``. For a matrix of
    runs x epochs, the same resamples give every epoch's interval.

    Args:
        values: One value per run (1-D), or runs x epochs (2-D).
        level: The confidence level, such as 0.95.
        resamples: The number of bootstrap resamples.
        seed: The seed of the resampling.

    Returns:
        ``(low, high)``: arrays with one entry per epoch (0-d for 1-D values). NaN where
        there are fewer than 2 runs or a value is NaN or infinite.

    Examples:
        >>> low, high = mean_interval([1.0, 2.0, 3.0, 4.0])
        >>> bool(1.0 < low < 2.5 < high < 4.0)
        True
    """
    a = np.asarray(values, dtype=np.float64)
    matrix = a.reshape(1, 1) if a.ndim == 0 else a.reshape(a.shape[0], math.prod(a.shape[1:]))
    runs = matrix.shape[0]
    low = np.full(matrix.shape[1], math.nan)
    high = low.copy()
    finite = np.isfinite(matrix).all(axis=0) if runs else np.zeros(matrix.shape[1], bool)
    if runs >= 2 and finite.any():
        drawn = _resamples(runs, resamples, seed)
        columns = np.flatnonzero(finite)
        tails = (50.0 * (1.0 - level), 100.0 - 50.0 * (1.0 - level))
        for first in range(0, len(columns), _COLUMNS):  # memory: resamples x _COLUMNS
            these = columns[first : first + _COLUMNS]
            if drawn.distinct is not None:
                low[these], high[these] = drawn.percentiles(matrix[:, these], tails)
            else:
                means = drawn.counts @ matrix[:, these] / runs
                low[these], high[these] = np.percentile(means, tails, axis=0)
    shape = a.shape[1:] if a.ndim else ()
    return low.reshape(shape), high.reshape(shape)


@dataclass(frozen=True)
class Resamples:
    """The bootstrap draws of ``runs`` runs: how often each run is drawn in each resample.

    Attributes:
        counts: resamples x runs. As counts, a resample's mean of every epoch is one matrix
            product: memory is resamples x epochs, not resamples x runs x epochs.
        distinct: The distinct rows of ``counts``, when there are few (few runs: 4 runs
            have 35 possible resamples); None otherwise.
        weight: How many resamples each distinct row stands for.
    """

    counts: np.ndarray
    distinct: np.ndarray | None
    weight: np.ndarray

    def percentiles(self, matrix: np.ndarray, tails: Sequence[float]) -> list[np.ndarray]:
        """``np.percentile(counts @ matrix / runs, tails, axis=0)``, from the distinct rows.

        Fast path: with few runs the 10,000 resampled means take a few dozen values; their
        order statistics come from the sorted distinct means and their cumulative weights,
        and NumPy's linear interpolation is repeated exactly (same numbers, ~200x faster).
        """
        assert self.distinct is not None
        n = len(self.counts)
        means = self.distinct @ matrix / matrix.shape[0]
        order = np.argsort(means, axis=0, kind="stable")
        ranked = np.take_along_axis(means, order, axis=0)
        below = np.cumsum(self.weight[order], axis=0)  # resamples at or below each mean
        out = []
        for tail in tails:
            q = tail / 100.0
            index = n * q + (1.0 + q * -1.0) - 1.0  # NumPy's virtual index, method="linear"
            lower = math.floor(index)
            t = index - lower
            a = np.take_along_axis(ranked, (below <= lower).sum(axis=0)[None], axis=0)[0]
            upper = min(lower + 1, n - 1)
            b = np.take_along_axis(ranked, (below <= upper).sum(axis=0)[None], axis=0)[0]
            diff = b - a  # NumPy's _lerp
            out.append(b - diff * (1.0 - t) if t >= 0.5 else a + diff * t)
        return out


@functools.lru_cache(maxsize=16)
def _resamples(runs: int, resamples: int, seed: int) -> Resamples:
    """The draws of ``mean_interval``, cached: every configuration with as many runs uses the
    same draws (its fixed seed makes them the same anyway), so a table draws once."""
    draws = np.random.default_rng(seed).integers(0, runs, size=(resamples, runs))
    rows = np.arange(resamples)[:, None] * runs
    counts = np.bincount((draws + rows).ravel(), minlength=resamples * runs)
    counts = counts.reshape(resamples, runs)
    distinct, weight = np.unique(counts, axis=0, return_counts=True)
    few = len(distinct) * 8 <= resamples  # else sorting them costs more than partitioning
    for array in (counts, distinct, weight):
        array.flags.writeable = False
    return Resamples(counts.astype(np.float64), distinct.astype(np.float64) if few else None,
                     weight)  # fmt: skip


def probability_of_improvement(x: Sequence[float], y: Sequence[float]) -> float:
    """``P(X > Y) + P(X = Y) / 2`` for a run X drawn from ``x`` and a run Y from ``y``.

    The Mann-Whitney U statistic of ``x`` against ``y`` over the ``len(x) * len(y)`` pairs,
    as rliable's ``metrics.probability_of_improvement`` on one task (0.5 when ``x`` and
    ``y`` are equal). NaN when either is empty or holds a NaN or an infinity.

    Examples:
        >>> probability_of_improvement([3.0, 4.0], [1.0, 3.0])  # 3 wins, 1 tie of 4 pairs
        0.875
    """
    a = np.asarray(x, dtype=np.float64)[:, None]
    b = np.asarray(y, dtype=np.float64)[None, :]
    if a.size == 0 or b.size == 0 or not (np.isfinite(a).all() and np.isfinite(b).all()):
        return math.nan
    wins = np.count_nonzero(a > b) + 0.5 * np.count_nonzero(a == b)
    return float(wins / (a.size * b.size))
