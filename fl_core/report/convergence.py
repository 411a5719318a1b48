"""Is the reference converged? Flags for the accuracy table (issue 11).

Per (dataset, alpha): ``full``'s seed-mean accuracy curve must have plateaued (its last two
evaluations within ``PLATEAU_PP``) and, at the grid's least skewed alpha (the largest, or ``iid``)
when the grid has ``centralized`` (the equal-compute upper bound), reach ``TARGET`` of it. A cell
that fails is flagged in the table, never published silently; the gap to ``centralized`` is stated
for every (dataset, alpha). Under stronger label skew a gap is what FedAvg pays for the skew, not a
sign of too few steps, so there it is stated, not flagged.

Every method's seed-mean curve is plateau-checked with the same rule: a method whose curve still
rises by more than ``PLATEAU_PP`` over its last two evaluations is flagged STILL RISING (one that
still falls, STILL FALLING), and the share of methods that plateaued is stated per (dataset,
partition); for ``full`` either way reads NOT CONVERGED, as above. Where the published number is the
mean of the last W evaluations (``fl.final_window``), the rule reads that mean: its change over the
last evaluation step, (last - the one W evaluations before) / W; W = 1 is the rule above, and W = 3
keeps one lucky round of a model averaged over a few sampled clients from reading as a trend.

Any method whose seed-mean final accuracy is less than ``LEARNED_PP`` above the seed-mean accuracy of
its untrained model (round 0 of the curves: the pretrained body with its fresh head) is flagged
BARELY TRAINED, so a row that is mostly its initial head is never read as a trained result.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from fl_core.metrics import ACCURACY
from fl_core.report.load import Results
from fl_core.report.notes import add_group_note
from fl_core.report.partitions import least_skewed  # the partition the centralized target applies at

PLATEAU_PP = 1.0
TARGET = 0.95
LEARNED_PP = 5.0


def mean_curve(res: Results, rows: pd.DataFrame) -> pd.Series:
    """Seed-mean test accuracy per evaluated round of the ok cells ``rows`` (rounds all seeds have)."""
    curves = []
    for h in rows[rows.status == "ok"].config_hash:
        r = res.table(h, "rounds")
        if not r.empty and ACCURACY in r:
            curves.append(r.dropna(subset=[ACCURACY]).set_index("round")[ACCURACY])
    if not curves:
        return pd.Series(dtype=float)
    return pd.concat(curves, axis=1).dropna().mean(axis=1)


def _final(rows: pd.DataFrame) -> float:
    ok = rows[rows.status == "ok"].final_accuracy.astype(float)
    ok = ok[np.isfinite(ok)]
    return float(ok.mean()) if len(ok) else math.nan


def window(rows: pd.DataFrame) -> int:
    """The evaluations a final number of ``rows`` averages (``fl.final_window``; 1 for older stores)."""
    w = rows.get("final_window", pd.Series(dtype=float)).dropna()
    return int(w.max()) if len(w) else 1


def last_step(res: Results, rows: pd.DataFrame) -> float:
    """Change, in pp, of the published final number of the seed-mean curve over its last evaluation
    step: the mean of the last W evaluations minus the mean of the W ending one evaluation earlier,
    (last - the evaluation W before it) / W; W = 1: the last two evaluations (NaN: too few)."""
    curve, w = mean_curve(res, rows), window(rows)
    return 100 * float(curve.iloc[-1] - curve.iloc[-1 - w]) / w if len(curve) >= w + 1 else math.nan


def step_words(w: int) -> str:
    """How :func:`last_step` reads, for flags and legends."""
    if w == 1:
        return "between its last two evaluations"
    return f"in the mean of its last {w} evaluations over the last evaluation step"


def check(res: Results, d: str, a: str) -> tuple[str, str]:
    """(flag for full's row, or "", one line for the dataset × alpha group, or "")."""
    c = res.cells[(res.cells.dataset == d) & (res.cells.alpha == a)]
    full, cen = c[c.method == "full"], c[c.method == "centralized"]
    if full.empty:
        return "", ""
    flags, line = [], ""
    step = abs(last_step(res, full))
    if math.isfinite(step) and step > PLATEAU_PP:
        what = (
            "last two evaluations differ"
            if window(full) == 1
            else f"mean of the last {window(full)} evaluations moved"
        )
        flags.append(f"{what} by {step:.1f} pp (> {PLATEAU_PP:g})")
    f, z = _final(full), _final(cen)
    if math.isfinite(f) and math.isfinite(z) and z > 0:
        line = f"full vs centralized (equal compute): {100 * (f - z):+.1f} pp ({100 * f / z:.1f}% of centralized)"
        if f < TARGET * z and a == least_skewed(res.cells.alpha.unique()):
            flags.append(f"below {100 * TARGET:g}% of centralized")
    return ("NOT CONVERGED: " + "; ".join(flags)) if flags else "", line


def gain_over_untrained(res: Results, rows: pd.DataFrame) -> float:
    """Mean over the ok cells that evaluated before training (round -1) of final (the mean of the last
    ``fl.final_window`` evaluations) minus that accuracy, in pp."""
    gains, w = [], window(rows)
    for h in rows[rows.status == "ok"].config_hash:
        r = res.table(h, "rounds")
        if ACCURACY not in r:  # a language model: no accuracy (its table is lm_table's)
            continue
        r = r.dropna(subset=[ACCURACY]).sort_values("round")
        if len(r) >= 1 + w and r["round"].iloc[0] == -1:
            gains.append(float(r.accuracy.iloc[-w:].mean() - r.accuracy.iloc[0]))
    return 100 * float(np.mean(gains)) if gains else math.nan


def _add_flag(table, d: str, a: str, column: str, value: str, flag: str) -> None:
    """Prefix ``flag`` to the notes of the rows of (``d``, ``a``) whose ``table.data[column]`` is ``value``."""
    for frame in (table.data, table.display):
        idx = frame.index[(frame.dataset == d) & (frame.alpha == a) & (table.data[column] == value)]
        frame.loc[idx, "notes"] = [flag + ("; " + n if n else "") for n in frame.loc[idx, "notes"]]


def annotate(table, res: Results):
    """Flag ``full``'s rows and add the centralized-gap line per (dataset, alpha) to the accuracy table."""
    groups = [] if table.data.empty else table.data.groupby(["dataset", "alpha"], sort=False).groups
    table.data["last_step_pp"] = math.nan
    for d, a in groups:
        flag, line = check(res, d, a)
        if line:
            add_group_note(table, (d, a), line)
        if flag:
            _add_flag(table, d, a, "method", "full", flag)
        cells = res.cells[(res.cells.dataset == d) & (res.cells.alpha == a)]
        for lab, rows in cells.groupby("label", sort=False):
            gain = gain_over_untrained(res, rows)
            if gain < LEARNED_PP:
                note = f"BARELY TRAINED: {gain:+.1f} pp over its untrained model (round 0)"
                _add_flag(table, d, a, "label", lab, note)
        _plateau(table, res, d, a, cells)
    w = window(res.cells)
    table.legend.append(
        f"NOT CONVERGED (full's notes): full's seed-mean accuracy changed by > {PLATEAU_PP:g} pp {step_words(w)}, "
        f"or, at the least skewed alpha, it is below {100 * TARGET:g}% of centralized (one client, all "
        "data, the same optimizer steps); at stronger skew the gap to centralized is stated above the group"
    )
    table.legend.append(
        f"STILL RISING / STILL FALLING (notes): the method's seed-mean accuracy changed by more than {PLATEAU_PP:g} pp "
        f"{step_words(w)} (the rule for full's NOT CONVERGED, applied to every method); plateaued: "
        "the share of methods whose curve did not, per dataset × partition"
    )
    table.legend.append(
        f"BARELY TRAINED (notes): the method's seed-mean final accuracy is less than {LEARNED_PP:g} pp above the "
        "seed-mean accuracy of its untrained model (round 0 of the curves: the pretrained body, its fresh head)"
    )
    return table


def _plateau(table, res: Results, d: str, a: str, cells: pd.DataFrame) -> None:
    """Flag every method of (``d``, ``a``) whose curve still moves; state the share that plateaued."""
    data = table.data
    steps = {}
    for lab, rows in cells.groupby("label", sort=False):
        step = last_step(res, rows)
        if not math.isfinite(step):
            continue
        steps[lab] = step
        data.loc[(data.dataset == d) & (data.alpha == a) & (data.label == lab), "last_step_pp"] = step
        if abs(step) > PLATEAU_PP and (rows.method != "full").all():
            word = "STILL RISING" if step > 0 else "STILL FALLING"
            what = (
                "over its last two evaluations" if window(rows) == 1 else f"in its last-{window(rows)} mean"
            )
            _add_flag(table, d, a, "label", lab, f"{word}: {step:+.1f} pp {what}")
    if steps:
        flat = sum(abs(x) <= PLATEAU_PP for x in steps.values())
        moving = [lab for lab, x in steps.items() if abs(x) > PLATEAU_PP]
        add_group_note(
            table,
            (d, a),
            f"Plateaued: {flat} of {len(steps)} methods ({100 * flat / len(steps):.0f}%)"
            + (f"; still moving: {', '.join(moving)}." if moving else "."),
        )
