"""Tiers: per (dataset, partition), the methods that Holm-corrected paired tests cannot tell apart.

Algorithm (the task's primary metric, :data:`fl_core.metrics.PRIMARY`: final test accuracy, or
perplexity for a language model; pairs = the same seed on the same partition, both cells finished):

1. Rank the candidate methods by their seed-mean, best first in the metric's declared direction
   (higher accuracy, lower perplexity) (reference rows such as ``centralized``, and cells
   that did not finish, e.g. duplicates, are not candidates).
2. The best-ranked remaining method leads a new tier. Test it against every other remaining method
   with a two-sided paired t-test; Holm-correct those p-values (one family per tier).
3. The tier is the leader plus every method whose Holm-adjusted p is not below ``LEVEL`` (0.05), and
   every method that cannot be tested against the leader (fewer than 2 pairs): none of them is told
   apart from the leader. Remove the tier and repeat from 2 until no method is left.

A tier is "not told apart from its leader", not an equivalence: a method with a lower mean but a
noisier difference can sit in a higher tier than one with a higher mean.

MDE (per dataset × partition): the smallest true difference a two-sided paired t-test at ``LEVEL``
detects with 80 % power, from the observed sd of the paired differences with their number of pairs
(statsmodels), the median over every pair of candidate methods, in the metric's units. A cell whose
MDE exceeds ``MDE_LIMIT_PP`` is flagged (metrics shown in %; perplexity has no such limit).
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd

from fl_core.metrics import ACCURACY, SUMMARY, final
from fl_core.report.notes import add_group_note
from fl_core.report.stats import holm, min_detectable_effect, paired_p_two_sided

REFERENCES = ("centralized",)
LEVEL = 0.05
POWER = 0.8
MDE_LIMIT_PP = 2.0
METRIC = final(ACCURACY)

TIER_COLUMNS = ["label", "mean", "n", "tier", "leader", "pairs", "diff", "p", "p_holm"]


def _by_label(cells: pd.DataFrame, metric: str) -> dict[str, pd.DataFrame]:
    """label → its finished cells (seed, value, partition_sha) with a finite ``metric``, candidates only."""
    ok = cells[(cells.status == "ok") & ~cells.method.isin(REFERENCES)].copy()
    ok["v"] = ok[metric].astype(float)
    ok = ok[np.isfinite(ok.v)]
    sha = ok["partition_sha"] if "partition_sha" in ok else pd.Series("", index=ok.index)
    ok["sha"] = sha.fillna("").astype(str)
    return {lab: g.set_index("seed")[["v", "sha"]] for lab, g in ok.groupby("label", sort=False)}


def paired_diffs(a: pd.DataFrame, b: pd.DataFrame) -> np.ndarray:
    """``a − b`` over the seeds both have on the same partition (an unknown partition pairs)."""
    seeds = sorted(set(a.index) & set(b.index))
    keep = [s for s in seeds if not (a.sha[s] and b.sha[s] and a.sha[s] != b.sha[s])]
    return (a.v[keep] - b.v[keep]).to_numpy(dtype=float)


def tiers(cells: pd.DataFrame, metric: str = METRIC, level: float = LEVEL) -> pd.DataFrame:
    """One row per candidate method of one (dataset, partition): its mean, seeds, tier (1 = top), the
    tier's leader, and the paired test against it (pairs, mean difference, p, Holm-adjusted p)."""
    vals = _by_label(cells, metric)
    order = list(dict.fromkeys(cells.label))  # display order breaks ties of the mean
    sign = -1.0 if SUMMARY[metric].higher else 1.0  # best first
    remaining = sorted(vals, key=lambda lab: (sign * float(vals[lab].v.mean()), order.index(lab)))
    rows, tier = [], 1
    while remaining:
        lead, others = remaining[0], remaining[1:]
        diffs = [paired_diffs(vals[lead], vals[o]) for o in others]
        p = np.array([paired_p_two_sided(d) for d in diffs])
        q = holm(p)
        members = [lead] + [o for o, x in zip(others, q, strict=True) if not x < level]
        rows.append(
            [lead, float(vals[lead].v.mean()), len(vals[lead]), tier, lead, 0, 0.0, math.nan, math.nan]
        )
        for o, d, x, y in zip(others, diffs, p, q, strict=True):
            if o in members:
                m = float(d.mean()) if len(d) else math.nan
                rows.append([o, float(vals[o].v.mean()), len(vals[o]), tier, lead, len(d), -m, x, y])
        remaining = [x for x in remaining if x not in members]
        tier += 1
    return pd.DataFrame(rows, columns=TIER_COLUMNS)


def mde(
    cells: pd.DataFrame, metric: str = METRIC, level: float = LEVEL, power: float = POWER
) -> tuple[float, int]:
    """(median MDE over all pairs of candidate methods, median number of pairs); NaN, 0 without pairs."""
    vals = _by_label(cells, metric)
    got = []
    for a, b in itertools.combinations(vals, 2):
        d = paired_diffs(vals[a], vals[b])
        e = min_detectable_effect(
            len(d), float(d.std(ddof=1)) if len(d) > 1 else math.nan, level, power, True
        )
        if math.isfinite(e):
            got.append((e, len(d)))
    if not got:
        return math.nan, 0
    return float(np.median([e for e, _ in got])), int(np.median([n for _, n in got]))


def tier_text(t: pd.DataFrame, top: int | None = None) -> str:
    """``tier 1: full, top-2; tier 2: head`` (the first ``top`` tiers, then how many more)."""
    parts = [
        f"tier {k}: " + ", ".join(g.label) for k, g in t.groupby("tier", sort=True) if top is None or k <= top
    ]
    more = int(t.tier.max()) - top if top is not None and len(t) and t.tier.max() > top else 0
    return "; ".join(parts) + (f"; {more} more tier{'s' if more > 1 else ''}" if more else "")


def add_tiers(table, res, metric: str = METRIC) -> None:
    """Add ``tier`` (+ leader and Holm-adjusted p against it) and the cell's ``mde`` (tiers and MDE on
    ``metric``) to a table's rows, a "tier" display column, and one line per (dataset, partition)."""
    data, disp = table.data, table.display
    for k in ("tier", "pairs_vs_leader", "diff_vs_leader", "p_vs_leader_holm", "mde", "mde_seeds"):
        data[k] = math.nan
    data["tier_leader"] = ""
    shown = pd.Series("—", index=disp.index, dtype=object)
    groups = [] if data.empty else data.groupby(["dataset", "alpha"], sort=False).groups
    for d, a in groups:
        cells = res.cells[(res.cells.dataset == d) & (res.cells.alpha == a)]
        t = tiers(cells, metric).set_index("label")
        e, n = mde(cells, metric)
        idx = data.index[(data.dataset == d) & (data.alpha == a)]
        data.loc[idx, ["mde", "mde_seeds"]] = [e, n]
        for i in idx:
            shown[i] = _tier_cell(data, i, t, cells)
        if len(t):
            add_group_note(
                table, (d, a), f"Tiers: {tier_text(t.reset_index())}. MDE: {_mde_text(e, n, metric)}."
            )
    disp.insert(disp.columns.get_loc("method") + 1, "tier", shown)
    name = SUMMARY[metric].display.split(" (")[0]
    table.legend.append(
        f"tier: methods that Holm-corrected two-sided paired t-tests ({name}, pairs = same seed and "
        f"partition, {LEVEL:g}) cannot tell apart from the tier's leader (the best remaining mean); tier 1 holds "
        "the best method; reference rows (centralized) and unfinished or duplicate rows are not tiered "
        "(algorithm: `fl_core/report/tiers.py`)"
    )
    limit = f"; flagged above {MDE_LIMIT_PP:g} pp" if SUMMARY[metric].scale == 100 else ""
    table.legend.append(
        f"MDE: the smallest true difference a two-sided paired t-test at {LEVEL:g} detects with "
        f"{100 * POWER:.0f}% power, from the sd of the paired differences (median over method pairs){limit}"
    )


def _tier_cell(data: pd.DataFrame, i, t: pd.DataFrame, cells: pd.DataFrame) -> str:
    """The tier column of row ``i`` (and its leader / test columns): a tier, "reference", "same run as X"."""
    lab = data.at[i, "label"]
    if lab in t.index:
        r = t.loc[lab]
        data.loc[i, ["tier", "pairs_vs_leader", "diff_vs_leader", "p_vs_leader_holm"]] = [
            r.tier,
            r.pairs,
            r["diff"],
            r.p_holm,
        ]
        data.at[i, "tier_leader"] = r.leader
        return str(int(r.tier))
    if data.at[i, "method"] in REFERENCES and data.at[i, "seeds_ok"] > 0:
        return "reference"
    if (g := cells[cells.label == lab]).status.eq("duplicate").all() and len(g):
        return duplicate_text(g)
    return "—"


def _mde_text(e: float, n: int, metric: str) -> str:
    if not math.isfinite(e):
        return "n/a (fewer than 2 paired seeds)"
    if SUMMARY[metric].scale != 100:
        return f"{e:.3g} ({n} paired seeds)"
    flag = (
        f" — ABOVE {MDE_LIMIT_PP:g} pp: smaller differences go undetected" if e > MDE_LIMIT_PP / 100 else ""
    )
    return f"{100 * e:.1f} pp ({n} paired seeds){flag}"


def duplicate_text(g: pd.DataFrame) -> str:
    """``same run as X`` for a method whose cells are duplicates of another method's."""
    reasons = [r for r in g.reason if r]
    return reasons[0] if reasons else "same run as another method"
