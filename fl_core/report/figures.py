"""The report's figures (matplotlib, Agg), each written as PNG and PDF with no timestamp in either.

Every method keeps one colour (a shade of its family's hue), line style and marker in every figure
(:class:`~fl_core.report.style.StyleMap`, built from the grid's method order and the families the
cells recorded), and styles differ in more than colour so the figures read in grayscale.

Panels (``<report>/figures/``), drawn by the modules named:

- ``acc_vs_round_<dataset>`` (:mod:`.fig_curves`): accuracy vs round, rows = alpha, columns = method
  family, ``full`` as a grey reference line in every panel, round 0 = pretrained where evaluated;
- ``pareto_bytes_up_<dataset>`` / ``pareto_flops_<dataset>`` (:mod:`.fig_pareto`): final accuracy vs
  bytes uploaded / client FLOPs with the Pareto front, one scale for the whole row;
- ``blocks_<dataset>_a<alpha>`` (:mod:`.fig_updates`): what was updated, per method: the share of
  clients that trained each block per round, the server's applied blocks, FibecFed's GAL/PL split and
  data share; ``depth_<dataset>``: the suffix depth per device class of budget methods;
- ``partition_<dataset>_a<alpha>``: the client × label counts of the Dirichlet partition, per seed;
- ``budget_<dataset>``: final accuracy vs budget for the budget family (e.g. ``tiny`` vs ``lora_budget``);
- ``index.png``: a contact sheet of every PNG above, for reviewers.
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path

import matplotlib
import matplotlib.image as mpimg
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from fl_core.report.fig_curves import acc_vs_round
from fl_core.report.fig_pareto import pareto, pareto_front
from fl_core.report.fig_updates import block_frequency, blocks_heatmaps, depth
from fl_core.report.load import Results
from fl_core.report.panels import families_of, grid, model_note, style_map
from fl_core.report.partitions import partition_label
from fl_core.report.stats import summarize
from fl_core.report.style import (
    HEATMAP,
    PALETTE,
    PNG_METADATA,
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
    "all_figures",
    "block_frequency",
    "blocks_heatmaps",
    "budget",
    "budget_rows",
    "contact_sheet",
    "depth",
    "pareto",
    "pareto_front",
    "partition_matrix",
    "partitions",
    "plot_partition",
    "save",
    "slug",
]

log = logging.getLogger(__name__)


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


def contact_sheet(pngs: list[Path], out: Path, ncol: int = 4) -> list[Path]:
    """``out/index.png``: every figure as a titled thumbnail, in report order."""
    if not pngs:
        return []
    nrow = math.ceil(len(pngs) / ncol)
    fig = Figure(figsize=(3.2 * ncol, 2.6 * nrow), layout="constrained")
    axes = fig.subplots(nrow, ncol, squeeze=False)
    for ax, p in zip(axes.flat, pngs, strict=False):
        ax.imshow(mpimg.imread(p), interpolation="antialiased")
        ax.set_title(p.stem, fontsize=7)
    for ax in axes.flat:
        ax.set_axis_off()
    png = out / "index.png"
    fig.savefig(png, dpi=110, metadata=PNG_METADATA)
    return [png]


def all_figures(res: Results, out: Path, errors: dict[str, str] | None = None) -> dict[str, list[Path]]:
    """Every panel; returns panel kind → files written (PNG and PDF), then ``out/index.png``, the
    contact sheet. ``budget`` / ``depth`` are empty when the grid has no budget-family methods. A
    panel that fails to draw is logged and left out (its error goes into ``errors``), so one bad
    panel never costs the rest of the report."""
    styles = style_map(res)
    panels = {
        "acc_vs_round": lambda: acc_vs_round(res, styles, out),
        "pareto_bytes_up": lambda: pareto(
            res, styles, out, "bytes_up", "bytes uploaded (client → server)", "pareto_bytes_up"
        ),
        "pareto_flops": lambda: pareto(res, styles, out, "client_flops", "client FLOPs", "pareto_flops"),
        "blocks": lambda: blocks_heatmaps(res, out),
        "depth": lambda: depth(res, styles, out),
        "partition": lambda: partitions(res, out),
        "budget": lambda: budget(res, styles, out),
    }
    written: dict[str, list[Path]] = {}
    with matplotlib.rc_context(RC):
        for name, draw in panels.items():
            try:
                written[name] = draw()
            except Exception as err:  # noqa: BLE001 — reported in the README, the other panels still come
                log.exception("figure panel %s failed", name)
                written[name] = []
                if errors is not None:
                    errors[name] = f"{type(err).__name__}: {err}"
        contact_sheet([p for ps in written.values() for p in ps if p.suffix == ".png"], out)
    return written
