"""Figure drawing shared by the report: the partition counts and the budget panel, and (re-exported)
the other panels' drawers and the style, for notebooks.

Every method keeps one colour (a shade of its family's hue), line style and marker in every figure
(:class:`~fl_core.report.style.StyleMap`, built from the grid's method order and the families the
cells recorded), and styles differ in more than colour so the figures read in grayscale. Which
figures the report draws, their files and titles: :mod:`.gallery` (the registry's panels).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd

from fl_core.report.fig_curves import acc_vs_round
from fl_core.report.fig_pareto import pareto, pareto_front
from fl_core.report.fig_updates import block_frequency, blocks_heatmaps, depth
from fl_core.report.load import Results
from fl_core.report.panels import families_of, grid, model_note
from fl_core.report.partitions import partition_label
from fl_core.report.stats import summarize
from fl_core.report.style import (
    HEATMAP,
    PALETTE,
    RC,
    Style,
    StyleMap,
    save,
    slug,
)

__all__ = [
    "HEATMAP",
    "PALETTE",
    "RC",
    "Style",
    "StyleMap",
    "acc_vs_round",
    "block_frequency",
    "blocks_heatmaps",
    "budget",
    "budget_rows",
    "depth",
    "pareto",
    "pareto_front",
    "partition_matrix",
    "partitions",
    "plot_partition",
    "save",
    "slug",
]


# -- partition ----------------------------------------------------------------------------------
def partition_matrix(part: dict) -> tuple[np.ndarray, list[str]]:
    counts = np.asarray(part.get("client_label_counts", []), dtype=int)
    names = list(part.get("label_names", [])) or [
        str(i) for i in range(counts.shape[1] if counts.ndim == 2 else 0)
    ]
    return counts, names


def plot_partition(ax, part: dict, title: str = "") -> None:
    counts, names = partition_matrix(part)
    if counts.size == 0:
        ax.set_visible(False)
        return
    ax.imshow(counts, aspect="auto", cmap=HEATMAP, vmin=0, vmax=max(1, counts.max()))
    ax.set_xticks(range(len(names)), names, rotation=90, fontsize=7)
    ax.set_yticks(
        range(counts.shape[0]), [f"client {i} (n={n})" for i, n in enumerate(counts.sum(1))], fontsize=7
    )
    ax.grid(False)
    if counts.size <= 200:
        hi = counts.max() / 2
        for (i, j), v in np.ndenumerate(counts):
            ax.text(j, i, str(v), ha="center", va="center", fontsize=6, color="white" if v > hi else "black")
    ax.set_title(title)


def partitions(res: Results, out: Path) -> list[Path]:
    written = []
    ok = res.cells[res.cells.status.isin(["ok", "diverged"])]
    for d in res.datasets:
        for a in res.alphas:
            sub = ok[(ok.dataset == d) & (ok.alpha == a)]
            seeds = sorted(set(sub.seed))
            if not seeds:
                continue
            parts = [res.partition(sub[sub.seed == s].config_hash.iloc[0]) for s in seeds]
            n_clients = max(len(p.get("client_label_counts", [])) for p in parts)
            fig, axes = grid(1, len(seeds), 3.4, 0.25 * n_clients + 1.2)
            axes = axes[0]
            for ax, s, part in zip(axes, seeds, parts, strict=True):
                plot_partition(ax, part, f"seed {s}")
            fig.suptitle(f"Client × label counts — {d}, {partition_label(a)}")
            written += save(fig, out / f"partition_{slug(d)}_a{slug(a)}")
    return written


# -- budget-aware scheme ------------------------------------------------------------------------
def _budget_key(b) -> tuple:
    try:
        return (0, float(b), "")
    except (TypeError, ValueError):
        return (1, 0.0, str(b))


def budget_rows(res: Results) -> pd.DataFrame:
    """The cells of budget-family methods (e.g. ``tiny`` / ``lora_budget``) with a ``budget`` param, with
    that budget and the line they belong to (method name + the params, other than the budget, that vary
    between its labels) as columns."""
    fam_of = families_of(res)  # per label: a skipped cell records no family of its own
    c = res.cells[res.cells.label.map(fam_of) == "budget"].copy()
    if c.empty:
        return c
    params = c.params_json.map(json.loads)
    c = c[params.map(lambda p: "budget" in p)]
    if c.empty:
        return c
    params = c.params_json.map(json.loads)
    c["budget"] = params.map(lambda p: p["budget"])
    varying: dict[str, set[str]] = {}
    for m, p in zip(c.method, params, strict=True):
        for k, v in p.items():
            varying.setdefault(f"{m}.{k}", set()).add(json.dumps(v, sort_keys=True))
    fam = []
    for m, p in zip(c.method, params, strict=True):
        extra = [f"{k}={v}" for k, v in sorted(p.items()) if k != "budget" and len(varying[f"{m}.{k}"]) > 1]
        fam.append(m + (f" ({', '.join(extra)})" if extra else ""))
    c["family"] = fam
    return c


def budget(res: Results, styles: StyleMap, out: Path, reference: str = "full") -> list[Path]:
    """Final accuracy vs budget level, one line per family; budgets on a categorical axis (numeric levels in
    order, then e.g. ``hetero``); a budget a family skipped is marked ``skipped`` on the axis; the
    reference method (``full``), when present, is a horizontal line."""
    c = budget_rows(res)
    if c.empty:
        return []
    written = []
    fams = list(dict.fromkeys(c.family))
    fam_style = StyleMap(fams)
    levels = sorted({json.dumps(b) for b in c.budget}, key=lambda b: _budget_key(json.loads(b)))
    pos = {b: i for i, b in enumerate(levels)}
    ticks = [str(json.loads(b)) for b in levels]
    for d in res.datasets:
        fig, axes = grid(
            1, len(res.alphas), 3.6, 2.8, extra_h=0.22 * math.ceil((len(fams) + 1) / 4), sharey=True
        )
        axes = axes[0]
        handles = {}
        for ax, a in zip(axes, res.alphas, strict=True):
            here = c[(c.dataset == d) & (c.alpha == a)]
            for k, fam in enumerate(fams):
                h = _budget_line(ax, here[here.family == fam], fam_style[fam], pos, k)
                if h is not None:
                    handles[fam] = h
            r = res.cells[
                (res.cells.dataset == d)
                & (res.cells.alpha == a)
                & (res.cells.label == reference)
                & (res.cells.status == "ok")
            ]
            if len(r):
                handles[f"{reference} (no budget)"] = ax.axhline(
                    100 * r.final_accuracy.mean(), color="0.5", linestyle=(0, (1, 1)), linewidth=1.0
                )
            _budget_axis(ax, ticks, d, a)
        axes[0].set_ylabel("final global test accuracy (%)")
        fig.suptitle(f"Suffix training vs LoRA under a budget (mean ± std over seeds){model_note(res)}")
        if handles:
            fig.legend(
                list(handles.values()), list(handles), loc="outside lower center", ncol=4, frameon=False
            )
        written += save(fig, out / f"budget_{slug(d)}")
    return written


def _budget_line(ax, g: pd.DataFrame, st, pos: dict[str, int], k: int):
    """One family's mean ± std final accuracy per budget level on ``ax`` (its ``k``-th line); a level
    whose cells were all skipped is marked ``skipped``. The line's handle, or None without points."""
    pts = []
    for b, gb in g.groupby(g.budget.map(json.dumps), sort=False):
        ok = gb[gb.status == "ok"]
        if len(ok):
            s = summarize(ok.final_accuracy)
            pts.append((pos[b], 100 * s.mean, 0.0 if s.n < 2 else 100 * s.std))
        elif (gb.status == "skipped").all():  # e.g. no LoRA rank fits: marked, not left out
            ax.text(
                pos[b],
                0.03 + 0.07 * k,
                "skipped",
                transform=ax.get_xaxis_transform(),
                ha="center",
                fontsize=6,
                color=st.color,
                bbox={"boxstyle": "round", "fc": "white", "ec": st.color, "lw": 0.6},
            )
    if not pts:
        return None
    pts.sort()
    return ax.errorbar(
        [p[0] for p in pts],
        [p[1] for p in pts],
        yerr=[p[2] for p in pts],
        capsize=2,
        markersize=5,
        linewidth=1.3,
        **st.kw(),
    )


def _budget_axis(ax, ticks: list[str], dataset: str, alpha) -> None:
    ax.set_xticks(range(len(ticks)), ticks)
    ax.set_xlim(-0.5, len(ticks) - 0.5)
    ax.set_title(f"{dataset}, {partition_label(alpha)}")
    ax.set_xlabel("budget (fraction of full fine-tuning's cost)")
