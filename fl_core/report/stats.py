"""Statistics of the report: mean ± std with a t-interval over seeds, and the paired tests of claims.

Every interval is a Student-t interval (few seeds); every paired test pairs two methods by
(dataset, alpha, seed), i.e. on the same data partition.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass
from typing import Literal

import numpy as np
from scipy import stats

Direction = Literal["greater", "less", "noninferior"]


@dataclass(frozen=True)
class Summary:
    n: int
    mean: float
    std: float  # sample std (ddof=1); NaN for n < 2
    ci_lo: float  # 95% t-interval of the mean; NaN for n < 2
    ci_hi: float


def summarize(x, level: float = 0.95) -> Summary:
    """Mean, sample std and the ``level`` t-interval of the mean of the finite values of ``x``."""
    x = np.asarray(x, dtype=float)
    x = x[np.isfinite(x)]
    n = len(x)
    if n == 0:
        return Summary(0, math.nan, math.nan, math.nan, math.nan)
    m = float(x.mean())
    if n < 2:
        return Summary(1, m, math.nan, math.nan, math.nan)
    s = float(x.std(ddof=1))
    h = float(stats.t.ppf(0.5 + level / 2, n - 1)) * s / math.sqrt(n)
    return Summary(n, m, s, m - h, m + h)


@dataclass(frozen=True)
class PairedTest:
    """``a − b`` over ``n`` pairs, tested against ``threshold`` in ``direction``.

    ``threshold`` is 0 for greater/less, ``−margin`` (higher is better) or ``+margin`` (lower is
    better) for non-inferiority. ``p_t`` / ``p_wilcoxon``: one-sided p-values of the paired t-test and
    the Wilcoxon signed-rank test of ``H1: mean(a − b) > threshold`` (``< threshold`` when the better
    side is lower). ``ci_lo`` / ``ci_hi``: the two-sided 95% t-interval of the mean difference;
    ``d_z``: Cohen's d_z = mean(a − b) / sd(a − b).
    """

    n: int
    mean_a: float
    mean_b: float
    mean_diff: float
    sd_diff: float
    ci_lo: float
    ci_hi: float
    d_z: float
    t: float
    p_t: float
    w: float
    p_wilcoxon: float
    threshold: float
    alternative: str  # "greater" | "less": the side of H1

    def as_dict(self) -> dict:
        return asdict(self)


def paired_test(
    a,
    b,
    direction: Direction = "greater",
    margin: float = 0.0,
    higher_is_better: bool = True,
    level: float = 0.95,
) -> PairedTest:
    """Paired t-test and Wilcoxon signed-rank test of ``a`` vs ``b`` (same order = same pairs).

    ``greater``: H1 mean(a − b) > 0; ``less``: H1 mean(a − b) < 0; ``noninferior``: a is not worse
    than b by more than ``margin`` (H1 mean(a − b) > −margin if higher is better, < +margin if lower).
    """
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    if a.shape != b.shape:
        raise ValueError(f"paired samples differ in length: {a.shape} vs {b.shape}")
    if direction == "greater":
        alt, thr = "greater", 0.0
    elif direction == "less":
        alt, thr = "less", 0.0
    elif direction == "noninferior":
        alt, thr = ("greater", -abs(margin)) if higher_is_better else ("less", abs(margin))
    else:
        raise ValueError(f"unknown direction {direction!r}; allowed: greater, less, noninferior")
    d = a - b
    n = len(d)
    nan = math.nan
    if n == 0:
        return PairedTest(0, nan, nan, nan, nan, nan, nan, nan, nan, nan, nan, nan, thr, alt)
    s = summarize(d, level)
    sd = s.std
    if n > 1 and sd <= 1e-12 * max(1.0, abs(s.mean)):  # identical differences (up to rounding): no spread
        sd = 0.0
        s = type(s)(s.n, s.mean, 0.0, s.mean, s.mean)
    d_z = s.mean / sd if n > 1 and sd > 0 else nan
    t = p_t = w = p_w = nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if n > 1 and sd > 0:
            res = stats.ttest_1samp(d - thr, 0.0, alternative=alt)
            t, p_t = float(res.statistic), float(res.pvalue)
        if np.any(d - thr != 0):
            try:
                res = stats.wilcoxon(d - thr, alternative=alt)
                w, p_w = float(res.statistic), float(res.pvalue)
            except ValueError:
                pass
    return PairedTest(
        n, float(a.mean()), float(b.mean()), s.mean, sd, s.ci_lo, s.ci_hi, d_z, t, p_t, w, p_w, thr, alt
    )


def verdict(test: PairedTest, level: float = 0.05, min_n: int = 3) -> str:
    """``supported`` / ``not supported`` / ``inconclusive: …`` from one-sided confidence bounds.

    supported: the one-sided (1 − level) bound of the mean difference clears the threshold on the
    claimed side (= one-sided paired t-test p < level); not supported: the opposite one-sided bound
    lies on the wrong side of (or at) the threshold (the data contradict the claim); otherwise
    inconclusive. Fewer than ``min_n`` pairs: inconclusive, whatever the numbers.
    """
    if test.n < min_n:
        return f"inconclusive: too few seeds (n={test.n})"
    m, sd = test.mean_diff, test.sd_diff
    h = float(stats.t.ppf(1 - level, test.n - 1)) * sd / math.sqrt(test.n) if sd > 0 else 0.0
    lo, hi = m - h, m + h
    if test.alternative == "greater":
        if lo > test.threshold:
            return "supported"
        if hi <= test.threshold:
            return "not supported"
    else:
        if hi < test.threshold:
            return "supported"
        if lo >= test.threshold:
            return "not supported"
    p = "n/a" if math.isnan(test.p_t) else f"{test.p_t:.3g}"
    return f"inconclusive: the difference is not significant (one-sided p={p})"


def min_detectable_effect(
    n: int, sd_diff: float, level: float = 0.05, power: float = 0.8, two_sided: bool = False
) -> float:
    """Smallest true mean difference a paired t-test at ``level`` (one-sided, or two-sided with
    ``two_sided``) with ``n`` pairs detects with probability ``power``, given the observed sd of the
    differences (statsmodels' noncentral-t power solver; Cohen 1988, ch. 2): ``d_z* · sd_diff``.
    NaN below 2 pairs; 0 when sd is 0."""
    if n < 2 or not math.isfinite(sd_diff):
        return math.nan
    if sd_diff == 0:
        return 0.0
    from statsmodels.stats.power import TTestPower

    alt = "two-sided" if two_sided else "larger"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        d = TTestPower().solve_power(effect_size=None, nobs=n, alpha=level, power=power, alternative=alt)
    return float(np.atleast_1d(d)[0]) * sd_diff


def holm(pvalues) -> np.ndarray:
    """Holm's step-down adjusted p-values (NaN entries are left out of the family and stay NaN):
    sort the m finite p ascending, p*_(i) = max_{j <= i} min(1, (m - j + 1) p_(j))."""
    p = np.asarray(pvalues, dtype=float)
    out = np.full(p.shape, math.nan)
    idx = np.flatnonzero(np.isfinite(p))
    m = len(idx)
    running = 0.0
    for rank, i in enumerate(idx[np.argsort(p[idx], kind="stable")]):
        running = max(running, min(1.0, (m - rank) * p[i]))
        out[i] = running
    return out


def paired_p_two_sided(d) -> float:
    """Two-sided paired t-test p of the differences ``d`` against 0; NaN below 2 pairs. With no spread
    the answer is exact: 1 when every difference is 0, else 0."""
    d = np.asarray(d, dtype=float)
    if len(d) < 2:
        return math.nan
    sd = float(d.std(ddof=1))
    if sd <= 1e-12 * max(1.0, abs(float(d.mean()))):
        return 1.0 if abs(float(d.mean())) <= 1e-12 else 0.0
    return float(stats.ttest_1samp(d, 0.0).pvalue)
