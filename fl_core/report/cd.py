"""Ranking all methods across cells: Friedman test + critical-difference diagram (Demšar 2006).

``autorank`` (a kept library) does the statistics: the Friedman omnibus test on the methods' ranks
and the Nemenyi post-hoc critical difference, and draws the CD diagram. Blocks are the (dataset,
alpha) cells (seed-mean of the metric); with fewer than ``MIN_BLOCKS`` cells, (dataset, alpha,
seed) triples are the blocks instead (repeated measures on the same partitions), and the report says
so. The test needs complete blocks: while a hole is left, the method or block with the larger share
of holes is left out (a method that never ran or never fits goes; on a grid in progress, the blocks
not run yet go), and both are named.
"""

from __future__ import annotations

import contextlib
import io
import logging
import math
import warnings
from pathlib import Path

import pandas as pd

from fl_core.report.load import Results

log = logging.getLogger(__name__)
MIN_BLOCKS = 5


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


def rank_matrix(
    res: Results, metric: str = "final_accuracy"
) -> tuple[pd.DataFrame, str, list[str], list[tuple]]:
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


def friedman_cd(res: Results, out_dir: Path, metric: str = "final_accuracy") -> list[str]:
    """Markdown lines of the ranking section; draws ``out_dir/cd_<metric>.png|pdf`` when it can."""
    from autorank import autorank, plot_stats

    m, what, dropped, blocks = rank_matrix(res, metric)
    lines = [f"Methods ranked by {metric} over {len(m)} blocks: {what}."]
    if dropped:
        lines.append(f"Methods left out (missing in some block): {', '.join(dropped)}.")
    if blocks:
        named = "; ".join(", ".join(map(str, b)) if isinstance(b, tuple) else str(b) for b in blocks)
        lines.append(f"Blocks left out (some method missing, e.g. not run yet): {len(blocks)} ({named}).")
    if m.shape[1] < 3 or len(m) < MIN_BLOCKS:
        return [*lines, f"Not ranked: a Friedman test here needs >= 3 methods and >= {MIN_BLOCKS} blocks."]
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):  # autorank prints
            warnings.simplefilter("ignore")
            r = autorank(m, alpha=0.05, verbose=False, order="descending", force_mode="nonparametric")
    except Exception as err:  # noqa: BLE001 — a ranking problem must not cost the rest of the report
        log.warning("Friedman test not run: %s", err)
        return [*lines, f"Not ranked: autorank failed ({err})."]
    ranks = ", ".join(f"{lab} {v:.2f}" for lab, v in r.rankdf.meanrank.sort_values().items())
    cd = f"; Nemenyi critical difference {r.cd:.2f} ranks" if r.cd is not None and math.isfinite(r.cd) else ""
    lines += [
        f"Friedman test (autorank): p = {r.pvalue:.3g}{cd}. Mean ranks (1 = best): {ranks}.",
    ]
    try:
        import matplotlib.pyplot as plt

        from fl_core.report.style import PDF_METADATA, PNG_METADATA, stable_pdf_fonts

        stable_pdf_fonts()

        out_dir.mkdir(parents=True, exist_ok=True)
        with contextlib.redirect_stdout(io.StringIO()):
            ax = plot_stats(r, allow_insignificant=True)
        fig = ax.get_figure()
        png = out_dir / f"cd_{metric}.png"
        fig.savefig(png, dpi=150, bbox_inches="tight", metadata=PNG_METADATA)
        fig.savefig(png.with_suffix(".pdf"), bbox_inches="tight", metadata=PDF_METADATA)
        plt.close(fig)
        lines += [
            "",
            f"![critical-difference diagram]({out_dir.name}/{png.name}) ([PDF]({out_dir.name}/{png.stem}.pdf))",
        ]
    except Exception as err:  # noqa: BLE001 — a figure problem must not cost the ranking text
        log.warning("CD diagram not drawn: %s", err)
        lines.append(f"(CD diagram not drawn: {err})")
    return lines
