"""Tiers of methods that Holm-corrected paired tests cannot tell apart, and the MDE, on crafted cells."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from fl_core.report.stats import holm, min_detectable_effect, paired_p_two_sided
from fl_core.report.tiers import mde, tier_text, tiers

BASE = np.array([0.80, 0.82, 0.84, 0.86, 0.88])
#: paired differences with mean 0.02, sd 0.0158: t = 2.83 with 4 df, two-sided p = 0.047 (< 0.05 alone)
D1 = np.array([0.01, 0.02, 0.03, 0.00, 0.04])


def _cells(methods: dict[str, np.ndarray], **extra) -> pd.DataFrame:
    rows = []
    for lab, acc in methods.items():
        for seed, v in enumerate(acc):
            rows.append(
                {
                    "label": lab,
                    "method": extra.get(lab, lab),
                    "seed": seed,
                    "status": "ok",
                    "final_accuracy": v,
                }
            )
    return pd.DataFrame(rows).assign(partition_sha="p", reason="")


def test_holm_by_hand_and_against_statsmodels():
    from statsmodels.stats.multitest import multipletests

    p = [0.01, 0.04, 0.03, math.nan]
    # sorted 0.01, 0.03, 0.04 -> 3*0.01 = 0.03, 2*0.03 = 0.06, max(0.06, 1*0.04) = 0.06
    assert np.allclose(holm(p)[:3], [0.03, 0.06, 0.06]) and math.isnan(holm(p)[3])
    assert np.allclose(holm(p)[:3], multipletests(p[:3], method="holm")[1])


def test_the_crafted_difference_is_significant_alone():
    assert paired_p_two_sided(D1) == pytest.approx(stats.ttest_rel(BASE, BASE - D1).pvalue)
    assert 0.04 < paired_p_two_sided(D1) < 0.05
    assert paired_p_two_sided([0.01, 0.01, 0.01]) == 0.0 and paired_p_two_sided([0.0, 0.0]) == 1.0
    assert math.isnan(paired_p_two_sided([0.3]))


def test_one_close_method_is_separated_then_tiers_continue():
    """A vs B: p = 0.047, A vs C: p ~ 0; Holm: 2 × ~0 and max(that, 0.047) = 0.047 < 0.05 -> both
    separated: tier 1 = A; then B leads and C (10 pp below, tiny noise) is separated: tier 3 = C."""
    c = _cells({"A": BASE, "B": BASE - D1, "C": BASE - 0.10 + np.array([0, 1e-3, -1e-3, 2e-3, 0])})
    t = tiers(c).set_index("label")
    assert dict(t.tier) == {"A": 1, "B": 2, "C": 3}
    assert tier_text(t.reset_index()) == "tier 1: A; tier 2: B; tier 3: C"


def test_holm_keeps_two_borderline_methods_in_the_top_tier():
    """Two methods at raw p = 0.047 each against the best: Holm gives 2 × 0.047 = 0.094 to both, so
    neither is told apart from the best; the far method still is."""
    far = BASE - 0.10 + np.array([0, 1e-3, -1e-3, 2e-3, 0])
    c = _cells({"A": BASE, "B": BASE - D1, "B2": BASE - D1[::-1], "C": far, "centralized": BASE + 0.1})
    t = tiers(c).set_index("label")
    assert "centralized" not in t.index  # a reference row is not tiered
    assert dict(t.tier) == {"A": 1, "B": 1, "B2": 1, "C": 2}
    assert t.loc["B", "p"] == pytest.approx(paired_p_two_sided(D1))
    # family of 3 against A: C (p ~ 0) first, then B and B2 at 2 × 0.047 (the last step keeps the max)
    assert t.loc["B", "p_holm"] == pytest.approx(2 * paired_p_two_sided(D1))
    assert t.loc["B2", "p_holm"] == pytest.approx(2 * paired_p_two_sided(D1))
    assert t.loc["B", "p_holm"] >= 0.05 and t.loc["B", "diff"] == pytest.approx(-0.02)


def test_unpaired_and_unfinished_methods():
    """A method with one seed cannot be tested against the best: it is not told apart (tier 1); a
    duplicate (not ok) is no candidate; pairs need the same partition."""
    c = _cells({"A": BASE, "C": BASE - 0.10 + np.array([0, 1e-3, -1e-3, 2e-3, 0]), "one": np.array([0.5])})
    dup = c[c.label == "C"].assign(label="C2", status="duplicate", reason="same run as C")
    t = tiers(pd.concat([c, dup])).set_index("label")
    assert dict(t.tier) == {"A": 1, "one": 1, "C": 2} and t.loc["one", "pairs"] == 1
    c.loc[(c.label == "C") & (c.seed < 4), "partition_sha"] = "other"  # 1 pair left: untestable
    assert dict(tiers(c).set_index("label").tier)["C"] == 1


def test_mde_is_the_two_sided_80_percent_power_effect_of_the_pairs():
    c = _cells({"A": BASE, "B": BASE - D1})
    e, n = mde(c)
    sd = float(np.std(D1, ddof=1))
    assert n == 5 and e == pytest.approx(min_detectable_effect(5, sd, 0.05, 0.8, two_sided=True))
    # two-sided needs a larger effect than one-sided; for n = 5 about 1.6 sd
    assert e > min_detectable_effect(5, sd) and 1.4 * sd < e < 1.8 * sd
    assert math.isnan(mde(_cells({"A": BASE}))[0])


def test_lower_is_better_metrics_lead_with_the_smallest_mean():
    """Perplexity: the lowest mean leads tier 1, and the MDE is in the metric's own units."""
    ppl = {"A": 20 + 10 * BASE, "B": 20 + 10 * (BASE - D1), "C": 30 + 10 * BASE}
    rows = [
        {"label": lab, "method": lab, "seed": s, "status": "ok", "final_perplexity": v}
        for lab, vs in ppl.items()
        for s, v in enumerate(vs)
    ]
    c = pd.DataFrame(rows).assign(partition_sha="p", reason="")
    t = tiers(c, "final_perplexity").set_index("label")
    assert dict(t.tier) == {"B": 1, "A": 2, "C": 3}  # as the accuracy case, mirrored
    e, n = mde(c, "final_perplexity")
    assert n == 5 and 0.1 < e < 5  # perplexity units (D1 x 10 has sd 0.16), not a share
