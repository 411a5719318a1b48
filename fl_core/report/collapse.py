"""Collapsed cells: a run that ends as (nearly) a constant predictor.

A finished cell is **collapsed** when its final macro-F1 on the global test split is at most
``COLLAPSE_PP`` above the macro-F1 of the constant predictor that always outputs the test split's
majority class: with ``C`` classes and majority share ``p`` that predictor's F1 is ``2p / (1 + p)`` on
the majority class and 0 on every other, so its macro-F1 is ``(1 / C) · 2p / (1 + p)``.

``p`` is the cell's own ``test_majority_share`` (recorded by the simulator in ``result.json`` info);
cells written before it was recorded fall back to the majority share of the pooled client training
label counts of their ``partition.json`` (the report loads no data), and the table says so.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from fl_core.report.notes import add_group_note

COLLAPSE_PP = 2.0


def constant_macro_f1(p: float, num_classes: float) -> float:
    """Macro-F1 of always predicting the majority class (share ``p``) among ``num_classes`` classes."""
    if not (math.isfinite(p) and math.isfinite(num_classes)) or num_classes < 1 or p <= 0:
        return math.nan
    return (2 * p / (1 + p)) / num_classes


def floors(cells: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    """(constant-predictor macro-F1 per cell, True where it came from the training-label fallback)."""
    test = cells.get("test_majority_share", pd.Series(np.nan, index=cells.index)).astype(float)
    train = cells.get("train_majority_share", pd.Series(np.nan, index=cells.index)).astype(float)
    c = cells.get("num_labels", pd.Series(np.nan, index=cells.index)).astype(float)
    fallback = ~np.isfinite(test) & np.isfinite(train)
    p = test.where(np.isfinite(test), train)
    return pd.Series(
        [constant_macro_f1(x, k) for x, k in zip(p, c, strict=True)], index=cells.index
    ), fallback


def collapsed(cells: pd.DataFrame) -> pd.Series:
    """True for every finished (ok) cell whose final macro-F1 is within ``COLLAPSE_PP`` of its floor."""
    floor, _ = floors(cells)
    f1 = cells.final_macro_f1.astype(float)
    hit = (cells.status == "ok") & np.isfinite(f1) & np.isfinite(floor)
    return hit & (f1 <= floor + COLLAPSE_PP / 100 + 1e-12)


def legend(fallback_cells: int) -> str:
    line = (
        f"collapsed: finished seeds whose final macro-F1 is within {COLLAPSE_PP:g} pp of a constant predictor's "
        "(always the test split's majority class, share p, C classes: macro-F1 = (1/C)·2p/(1+p))"
    )
    if fallback_cells:
        line += (
            f"; {fallback_cells} cells predate the recorded test majority share and use the majority share "
            "of their pooled client training labels instead"
        )
    return line


def add_collapse(table, res) -> None:
    """Count collapsed seeds per row of the accuracy table (``collapsed`` in the CSV, "k/n" shown) and
    per (dataset, partition) in the line above the group."""
    data, disp = table.data, table.display
    cells = res.cells
    flag = collapsed(cells)
    floor, fallback = floors(cells)
    data["collapsed"] = 0
    data["collapse_floor_macro_f1"] = math.nan
    shown = pd.Series("—", index=disp.index, dtype=object)
    for i, r in data.iterrows():
        sel = (cells.dataset == r.dataset) & (cells.alpha == r.alpha) & (cells.label == r.label)
        ok = sel & (cells.status == "ok")
        data.at[i, "collapsed"] = int(flag[sel].sum())
        if ok.any():
            data.at[i, "collapse_floor_macro_f1"] = float(floor[ok].mean())
            shown[i] = f"{int(flag[sel].sum())}/{int(ok.sum())}"
    at = disp.columns.get_loc("final macro-F1 (%)") + 1 if "final macro-F1 (%)" in disp else len(disp.columns)
    disp.insert(at, "collapsed", shown)
    groups = [] if data.empty else data.groupby(["dataset", "alpha"], sort=False).groups
    for d, a in groups:
        here = (cells.dataset == d) & (cells.alpha == a) & (cells.status == "ok")
        n, k = int(here.sum()), int(flag[here].sum())
        if n:
            add_group_note(table, (d, a), f"Collapsed: {k} of {n} finished cells ({100 * k / n:.0f}%).")
    table.legend.append(legend(int((fallback & (cells.status == "ok")).sum())))
