"""Is the reference converged? Flags for the accuracy table (issue 11).

Per (dataset, alpha): ``full``'s seed-mean accuracy curve must have plateaued (its last two
evaluations within ``PLATEAU_PP``) and, at the grid's least skewed alpha (the largest, or ``iid``)
when the grid has ``centralized`` (the equal-compute upper bound), reach ``TARGET`` of it. A cell
that fails is flagged in the table, never published silently; the gap to ``centralized`` is stated
for every (dataset, alpha). Under stronger label skew a gap is what FedAvg pays for the skew, not a
sign of too few steps, so there it is stated, not flagged.

Any method whose seed-mean final accuracy is less than ``LEARNED_PP`` above the seed-mean accuracy of
its untrained model (round 0 of the curves: the pretrained body with its fresh head) is flagged
BARELY TRAINED, so a row that is mostly its initial head is never read as a trained result.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from fl_core.report.load import Results

PLATEAU_PP = 1.0
TARGET = 0.95
LEARNED_PP = 5.0


def mean_curve(res: Results, rows: pd.DataFrame) -> pd.Series:
    """Seed-mean test accuracy per evaluated round of the ok cells ``rows`` (rounds all seeds have)."""
    curves = []
    for h in rows[rows.status == "ok"].config_hash:
        r = res.table(h, "rounds")
        if not r.empty and "accuracy" in r:
            curves.append(r.dropna(subset=["accuracy"]).set_index("round").accuracy)
    if not curves:
        return pd.Series(dtype=float)
    return pd.concat(curves, axis=1).dropna().mean(axis=1)


def _final(rows: pd.DataFrame) -> float:
    ok = rows[rows.status == "ok"].final_accuracy.astype(float)
    ok = ok[np.isfinite(ok)]
    return float(ok.mean()) if len(ok) else math.nan


def least_skewed(alphas) -> str:
    """The alpha the centralized target applies at: ``iid`` if the grid has it, else the largest."""
    alphas = {str(a) for a in alphas}
    return "iid" if "iid" in alphas else max(alphas, key=float)


def check(res: Results, d: str, a: str) -> tuple[str, str]:
    """(flag for full's row, or "", one line for the dataset × alpha group, or "")."""
    c = res.cells[(res.cells.dataset == d) & (res.cells.alpha == a)]
    full, cen = c[c.method == "full"], c[c.method == "centralized"]
    if full.empty:
        return "", ""
    flags, line = [], ""
    curve = mean_curve(res, full)
    if len(curve) >= 2:
        step = 100 * abs(curve.iloc[-1] - curve.iloc[-2])
        if step > PLATEAU_PP:
            flags.append(f"last two evaluations differ by {step:.1f} pp (> {PLATEAU_PP:g})")
    f, z = _final(full), _final(cen)
    if math.isfinite(f) and math.isfinite(z) and z > 0:
        line = f"full vs centralized (equal compute): {100 * (f - z):+.1f} pp ({100 * f / z:.1f}% of centralized)"
        if f < TARGET * z and a == least_skewed(res.cells.alpha.unique()):
            flags.append(f"below {100 * TARGET:g}% of centralized")
    return ("NOT CONVERGED: " + "; ".join(flags)) if flags else "", line


def gain_over_untrained(res: Results, rows: pd.DataFrame) -> float:
    """Mean over the ok cells that evaluated before training (round -1) of final minus that accuracy, in pp."""
    gains = []
    for h in rows[rows.status == "ok"].config_hash:
        r = res.table(h, "rounds")
        if "accuracy" not in r:  # a language model: no accuracy (its table is lm_table's)
            continue
        r = r.dropna(subset=["accuracy"]).sort_values("round")
        if len(r) >= 2 and r["round"].iloc[0] == -1:
            gains.append(float(r.accuracy.iloc[-1] - r.accuracy.iloc[0]))
    return 100 * float(np.mean(gains)) if gains else math.nan


def _add_flag(table, d: str, a: str, column: str, value: str, flag: str) -> None:
    """Prefix ``flag`` to the notes of the rows of (``d``, ``a``) whose ``table.data[column]`` is ``value``."""
    for frame in (table.data, table.display):
        idx = frame.index[(frame.dataset == d) & (frame.alpha == a) & (table.data[column] == value)]
        frame.loc[idx, "notes"] = [flag + ("; " + n if n else "") for n in frame.loc[idx, "notes"]]


def annotate(table, res: Results):
    """Flag ``full``'s rows and add the centralized-gap line per (dataset, alpha) to the accuracy table."""
    groups = [] if table.data.empty else table.data.groupby(["dataset", "alpha"], sort=False).groups
    for d, a in groups:
        flag, line = check(res, d, a)
        if line:
            table.group_notes[(d, a)] = line
        if flag:
            _add_flag(table, d, a, "method", "full", flag)
        cells = res.cells[(res.cells.dataset == d) & (res.cells.alpha == a)]
        for lab, rows in cells.groupby("label", sort=False):
            gain = gain_over_untrained(res, rows)
            if gain < LEARNED_PP:
                note = f"BARELY TRAINED: {gain:+.1f} pp over its untrained model (round 0)"
                _add_flag(table, d, a, "label", lab, note)
    table.legend.append(
        f"NOT CONVERGED (full's notes): full's seed-mean accuracy changed by > {PLATEAU_PP:g} pp between its last two "
        f"evaluations, or, at the least skewed alpha, it is below {100 * TARGET:g}% of centralized (one client, all "
        "data, the same optimizer steps); at stronger skew the gap to centralized is stated above the group"
    )
    table.legend.append(
        f"BARELY TRAINED (notes): the method's seed-mean final accuracy is less than {LEARNED_PP:g} pp above the "
        "seed-mean accuracy of its untrained model (round 0 of the curves: the pretrained body, its fresh head)"
    )
    return table
