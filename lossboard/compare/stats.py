"""Statistics over a few seeds without SciPy: mean, sample std and Welch's t-test."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass


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
            squares = math.fsum((v - mean) * (v - mean) for v in values)
            if math.isinf(squares):  # near float's range: deviations scaled, halved first
                scale = max(abs(low), abs(high))
                squares = math.fsum(((v / 2 - mean / 2) / scale) ** 2 for v in values)
                std = scale * (2 * math.sqrt(squares / (n - 1)))
            else:
                std = math.sqrt(squares / (n - 1))
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
