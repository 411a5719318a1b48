"""Ranking all methods across cells: Friedman test + critical-difference diagram (Demšar 2006).

``autorank`` (a kept library) does the statistics: the Friedman omnibus test on the methods' ranks
and the Nemenyi post-hoc critical difference, and draws the CD diagram. Blocks are the (dataset,
alpha) cells (seed-mean of the metric); with fewer than ``MIN_BLOCKS`` cells, (dataset, alpha,
seed) triples are the blocks instead (repeated measures on the same partitions), and the report says
so. The test needs complete blocks: while a hole is left, the method or block with the larger share
of holes is left out (a method that never ran or never fits goes; on a grid in progress, the blocks
not run yet go), and both are named. The diagram is the ``cd`` panel of :mod:`.gallery`, drawn through
:func:`.style.save` like every figure (PDF bytes fixed, in ``figures/index.png``).
"""

from __future__ import annotations

import contextlib
import io
import logging
import math
import warnings
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from fl_core.metrics import ACCURACY, PRIMARY, final, higher_is_better
from fl_core.report.figure_registry import Inputs
from fl_core.report.load import Results
from fl_core.report.style import save
from fl_core.report.tables import is_lm

log = logging.getLogger(__name__)
MIN_BLOCKS = 5
METRIC = final(ACCURACY)  # the ranking's metric where cells record it, else the LM's perplexity


def ranked_metric(res: Results) -> str:
    """What the ranking ranks by: final accuracy where any cell records it (a classification task),
    else final perplexity (a language-modeling grid); ranks follow the metric's declared direction."""
    return PRIMARY["lm"] if is_lm(res.cells) else METRIC


def complete_blocks(m: pd.DataFrame) -> tuple[pd.DataFrame, list[str], list[tuple]]:
    """``m`` without holes: repeatedly leave out the method (column) or block (row) with the larger
    share of missing values (a row on a tie); returns (matrix, methods left out, blocks left out)."""
    methods, blocks = [], []
    while len(m) and m.shape[1] and m.isna().any().any():
        col, row = m.isna().mean(axis=0), m.isna().mean(axis=1)
        if col.max() > row.max():
            methods.append(col.idxmax())
            m = m.drop(columns=col.idxmax())
        else:
            blocks.append(row.idxmax())
            m = m.drop(index=row.idxmax())
    return m, methods, blocks


def rank_matrix(res: Results, metric: str = METRIC) -> tuple[pd.DataFrame, str, list[str], list[tuple]]:
    """(blocks × methods matrix, what a block is, methods left out, blocks left out)."""
    ok = res.cells[res.cells.status == "ok"].copy()
    ok[metric] = ok[metric].astype(float)
    by_cell = ok.groupby(["dataset", "alpha"]).ngroups >= MIN_BLOCKS
    keys = ["dataset", "alpha"] if by_cell else ["dataset", "alpha", "seed"]
    m = ok.pivot_table(index=keys, columns="label", values=metric, aggfunc="mean")
    m = m[[lab for lab in res.labels if lab in m.columns]]
    m, dropped, blocks = complete_blocks(m)
    what = (
        "(dataset, alpha) cells, seed-mean"
        if by_cell
        else f"(dataset, alpha, seed) triples, as the grid has fewer than {MIN_BLOCKS} (dataset, alpha) cells; "
        "seeds of one cell share their data, so these blocks are not independent and the CD is optimistic"
    )
    return m, what, dropped, blocks


@dataclass(frozen=True)
class Ranking:
    """The ranking section's text and autorank's result (None: not ranked, the text says why)."""

    lines: list[str]
    result: object | None = None


def rank(res: Results, metric: str = METRIC) -> Ranking:
    """Friedman test over the complete blocks (autorank), as README lines and autorank's result."""
    from autorank import autorank

    m, what, dropped, blocks = rank_matrix(res, metric)
    lines = [f"Methods ranked by {metric} over {len(m)} blocks: {what}."]
    if dropped:
        lines.append(f"Methods left out (missing in some block): {', '.join(dropped)}.")
    if blocks:
        named = "; ".join(", ".join(map(str, b)) if isinstance(b, tuple) else str(b) for b in blocks)
        lines.append(f"Blocks left out (some method missing, e.g. not run yet): {len(blocks)} ({named}).")
    if m.shape[1] < 3 or len(m) < MIN_BLOCKS:
        return Ranking(
            [*lines, f"Not ranked: a Friedman test here needs >= 3 methods and >= {MIN_BLOCKS} blocks."]
        )
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):  # autorank prints
            warnings.simplefilter("ignore")
            order = "descending" if higher_is_better(metric) else "ascending"  # rank 1 = best either way
            r = autorank(m, alpha=0.05, verbose=False, order=order, force_mode="nonparametric")
    except Exception as err:  # noqa: BLE001 — a ranking problem must not cost the rest of the report
        log.warning("Friedman test not run: %s", err)
        return Ranking([*lines, f"Not ranked: autorank failed ({err})."])
    ranks = ", ".join(f"{lab} {v:.2f}" for lab, v in r.rankdf.meanrank.sort_values().items())
    cd = f"; Nemenyi critical difference {r.cd:.2f} ranks" if r.cd is not None and math.isfinite(r.cd) else ""
    lines.append(f"Friedman test (autorank): p = {r.pvalue:.3g}{cd}. Mean ranks (1 = best): {ranks}.")
    return Ranking(lines, r)


def ranking(inputs: Inputs, metric: str | None = None) -> Ranking:
    """:func:`rank` of the report's results (by :func:`ranked_metric` unless ``metric``), computed once
    per report (kept in ``inputs.memo``)."""
    metric = metric or ranked_metric(inputs.res)
    key = f"cd.ranking:{metric}"
    if key not in inputs.memo:
        inputs.memo[key] = rank(inputs.res, metric)
    return inputs.memo[key]


def cd_diagram(result, stem: Path) -> list[Path]:
    """autorank's CD diagram of ``result`` as ``stem.png`` / ``stem.pdf``, through :func:`.style.save`."""
    import matplotlib.pyplot as plt
    from autorank import plot_stats

    with contextlib.redirect_stdout(io.StringIO()):
        fig = plot_stats(result, allow_insignificant=True).get_figure()
    try:
        return save(fig, stem, dpi=150, bbox_inches="tight")
    finally:
        plt.close(fig)


def section(r: Ranking, drawn: list[Path], error: str | None = None) -> list[str]:
    """The README's ranking lines: ``r``'s text, then the diagram ``drawn`` (or why it is missing)."""
    if error is not None:
        return [*r.lines, f"(CD diagram not drawn: {error})"]
    lines = list(r.lines)
    for p in (p for p in drawn if p.suffix == ".png"):
        d = p.parent.name
        lines += ["", f"![critical-difference diagram]({d}/{p.name}) ([PDF]({d}/{p.stem}.pdf))"]
    return lines
