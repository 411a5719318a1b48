"""Verdicts of a claim's comparisons: Holm within the claim, one-sided bounds that match, tallies.

Per claim, the family is every comparison that could be tested (>= ``min_seeds`` pairs). For each,
``p`` is the one-sided paired t-test p in the claimed direction (H1: a − b beyond the threshold on
the claimed side) and ``p_opposite`` the one-sided p in the opposite direction. Both sets are
Holm-adjusted within the claim (``p_holm``, ``p_opposite_holm``). Then:

- **supported**: ``p_holm < alpha`` (Holm-significant in the claimed direction);
- **not supported**: ``p_opposite_holm < alpha`` (Holm-significant in the opposite direction: the
  data exclude the claimed effect);
- **inconclusive**: neither, or fewer than ``min_seeds`` pairs.

The bounds shown are the ones these verdicts use: each side's one-sided t bound at its Holm level
``alpha · p / p_holm`` (the level at which the unadjusted bound clears the threshold exactly when
``p_holm < alpha``). So a comparison is supported when ``[bound_lo, bound_hi]`` lies wholly on the
claimed side of the threshold, not supported when wholly on the other side, inconclusive when it
covers the threshold.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

from fl_core.report.stats import holm

VERDICTS = ("supported", "not supported", "inconclusive", "not evaluated")


def _one_sided(r: dict) -> tuple[float, float]:
    """(p in the claimed direction, p in the opposite one) of a comparison row."""
    n, m, sd, thr = r["n"], r["mean_diff"], r["sd_diff"], r["threshold"]
    sign = 1.0 if r["alternative"] == "greater" else -1.0
    if sd > 0:
        t = sign * (m - thr) / (sd / math.sqrt(n))
        return float(stats.t.sf(t, n - 1)), float(stats.t.cdf(t, n - 1))
    e = sign * (m - thr)  # no spread: the sign of the (constant) difference decides
    return (0.0, 1.0) if e > 0 else (1.0, 0.0) if e < 0 else (1.0, 1.0)


def _bound(r: dict, level: float, upper: bool) -> float:
    """One-sided (1 − level) t bound of the mean difference (upper or lower)."""
    n, m, sd = r["n"], r["mean_diff"], r["sd_diff"]
    if not (0 < level < 1) or not sd > 0:
        return float(m)
    h = float(stats.t.ppf(1 - level, n - 1)) * sd / math.sqrt(n)
    return m + h if upper else m - h


def apply_holm(rows: list[dict], alpha: float, min_seeds: int) -> None:
    """Set the Holm columns, bounds and verdicts of one claim's comparison rows (in place).

    Rows already carrying a ``not evaluated`` or too-few-seeds verdict keep it and stay out of the family.
    """
    fam = [r for r in rows if r.get("n", 0) >= min_seeds and math.isfinite(r.get("mean_diff", math.nan))]
    for r in rows:
        for k in (
            "p_holm",
            "p_opposite",
            "p_opposite_holm",
            "level_claim",
            "level_opposite",
            "bound_lo",
            "bound_hi",
        ):
            r.setdefault(k, math.nan)
    if not fam:
        return
    ps = np.array([_one_sided(r) for r in fam])
    q_claim, q_opp = holm(ps[:, 0]), holm(ps[:, 1])
    for r, (p, po), q, qo in zip(fam, ps, q_claim, q_opp, strict=True):
        lc = alpha * p / q if q > 0 else alpha
        lo = alpha * po / qo if qo > 0 else alpha
        greater = r["alternative"] == "greater"
        claim_side, opp_side = _bound(r, lc, upper=not greater), _bound(r, lo, upper=greater)
        r.update(
            p_holm=float(q),
            p_opposite=float(po),
            p_opposite_holm=float(qo),
            level_claim=float(lc),
            level_opposite=float(lo),
            bound_lo=claim_side if greater else opp_side,
            bound_hi=opp_side if greater else claim_side,
        )
        if q < alpha:
            r["verdict"] = "supported"
        elif qo < alpha:
            r["verdict"] = "not supported"
        else:
            mde = r.get("mde", math.nan)
            scale, unit = (100, " pp") if r.get("pct") else (1, "")
            mde_txt = f"no difference larger than {scale * mde:.2f}{unit}; " if math.isfinite(mde) else ""
            r["verdict"] = (
                f"inconclusive: {mde_txt}Holm-adjusted p = {q:.3g} (claimed side), {qo:.3g} (opposite)"
            )


def kind(verdict: str) -> str:
    """``supported`` / ``not supported`` / ``inconclusive`` / ``not evaluated`` of a verdict text."""
    return next(k for k in VERDICTS if verdict.startswith(k))


def tally(verdicts: list[str]) -> dict[str, int]:
    counts = {k: 0 for k in VERDICTS}
    for v in verdicts:
        counts[kind(v)] += 1
    return counts


def tally_text(verdicts: list[str]) -> str:
    """``6 supported, 3 not supported, 7 inconclusive of 16`` (+ ``, 1 not evaluated`` where any)."""
    c = tally(verdicts)
    text = f"{c['supported']} supported, {c['not supported']} not supported, {c['inconclusive']} inconclusive"
    text += f" of {len(verdicts)}"
    return text + (f" ({c['not evaluated']} not evaluated)" if c["not evaluated"] else "")
