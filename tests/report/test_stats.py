"""The statistics against hand-computed values and scipy."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from fl_core.report.stats import paired_test, summarize, verdict


def test_summary_t_interval_known_values():
    s = summarize([1.0, 2.0, 3.0, 4.0])
    # mean 2.5, sd sqrt(5/3) = 1.290994, t_{0.975,3} = 3.182446, half width = 3.182446 * 1.290994 / 2
    assert s.n == 4 and s.mean == 2.5 and s.std == pytest.approx(1.290994, abs=1e-6)
    assert (s.ci_lo, s.ci_hi) == (pytest.approx(0.445739, abs=1e-5), pytest.approx(4.554261, abs=1e-5))
    one = summarize([0.7, float("nan")])
    assert one.n == 1 and one.mean == 0.7 and math.isnan(one.std) and math.isnan(one.ci_lo)


def test_paired_t_wilcoxon_ci_and_dz_known_values():
    b = np.array([0.50, 0.60, 0.55, 0.52])
    a = b + np.array([1.0, 2.0, 3.0, 4.0]) / 100
    r = paired_test(a, b, "greater")
    assert r.n == 4 and r.mean_diff == pytest.approx(0.025)
    assert r.d_z == pytest.approx(0.025 / 0.01290994, rel=1e-5)  # 1.936492
    assert r.t == pytest.approx(3.872983, rel=1e-5)  # mean / (sd / sqrt(n))
    # one-sided, 3 dof, closed form: p = 1/2 - (x/(1+x^2) + atan(x))/pi with x = t/sqrt(3)
    x = r.t / math.sqrt(3)
    assert (
        r.p_t
        == pytest.approx(0.5 - (x / (1 + x * x) + math.atan(x)) / math.pi)
        == pytest.approx(0.015233, abs=1e-6)
    )
    assert r.p_wilcoxon == pytest.approx(1 / 16)  # exact: all 4 differences positive
    assert (r.ci_lo, r.ci_hi) == (pytest.approx(0.00445739, abs=1e-7), pytest.approx(0.04554261, abs=1e-7))


def test_paired_tests_agree_with_scipy():
    rng = np.random.default_rng(0)
    b = rng.normal(0.7, 0.05, 7)
    a = b + rng.normal(0.01, 0.02, 7)
    for direction, alt in (("greater", "greater"), ("less", "less")):
        r = paired_test(a, b, direction)
        assert r.p_t == pytest.approx(stats.ttest_rel(a, b, alternative=alt).pvalue)
        assert r.p_wilcoxon == pytest.approx(stats.wilcoxon(a - b, alternative=alt).pvalue)
    lo, hi = stats.t.interval(0.95, 6, loc=(a - b).mean(), scale=stats.sem(a - b))
    assert (r.ci_lo, r.ci_hi) == (pytest.approx(lo), pytest.approx(hi))


def test_noninferiority_shifts_by_the_margin_on_the_right_side():
    b = np.array([0.80, 0.82, 0.81, 0.79])
    a = b - np.array([0.004, 0.006, 0.005, 0.003])  # slightly worse, well within a 2 pp margin
    acc = paired_test(a, b, "noninferior", margin=0.02)
    assert acc.threshold == -0.02 and acc.alternative == "greater"
    assert acc.p_t == pytest.approx(stats.ttest_1samp(a - b + 0.02, 0, alternative="greater").pvalue)
    assert verdict(acc) == "supported"
    assert verdict(paired_test(a, b, "greater")) == "not supported"
    # lower is better (e.g. FLOPs): not worse = not more than margin above
    cost = paired_test(b + 0.001 * np.arange(4), b, "noninferior", margin=0.05, higher_is_better=False)
    assert cost.threshold == 0.05 and cost.alternative == "less" and verdict(cost) == "supported"


def test_one_or_two_seeds_are_inconclusive_whatever_the_numbers():
    assert verdict(paired_test([0.9], [0.1], "greater")) == "inconclusive: too few seeds (n=1)"
    assert verdict(paired_test([0.9, 0.91], [0.1, 0.12], "greater")) == "inconclusive: too few seeds (n=2)"


def test_verdicts_three_ways():
    b = np.array([0.70, 0.72, 0.71, 0.69, 0.70])
    assert verdict(paired_test(b + [0.02, 0.03, 0.025, 0.02, 0.03], b)) == "supported"
    assert verdict(paired_test(b - [0.02, 0.03, 0.025, 0.02, 0.03], b)) == "not supported"
    assert verdict(paired_test(b + [0.02, -0.03, 0.01, -0.01, 0.0], b)).startswith(
        "inconclusive: the difference"
    )
    # identical runs: a does not beat b
    assert verdict(paired_test(b, b)) == "not supported"


def test_mismatched_pairs_raise():
    with pytest.raises(ValueError, match="differ in length"):
        paired_test([1, 2, 3], [1, 2])


def test_min_detectable_effect_has_80_percent_power():
    from fl_core.report.stats import min_detectable_effect

    n, sd = 5, 0.02
    mde = min_detectable_effect(n, sd, 0.05)
    # power of the one-sided paired t-test at the MDE, from scipy's noncentral t: 0.8
    t_crit = stats.t.ppf(0.95, n - 1)
    power = 1 - stats.nct.cdf(t_crit, n - 1, mde / sd * math.sqrt(n))
    assert power == pytest.approx(0.8, abs=1e-4)
    assert min_detectable_effect(10, sd) < mde < min_detectable_effect(3, sd)  # more seeds, smaller MDE
    assert min_detectable_effect(n, 2 * sd) == pytest.approx(2 * mde)
    assert math.isnan(min_detectable_effect(1, sd)) and min_detectable_effect(n, 0.0) == 0.0
