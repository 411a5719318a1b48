"""The report's figures (matplotlib, Agg), each written as PNG and PDF with no timestamp in either.

Every method keeps one color, line style and marker in every figure (:class:`StyleMap`, built from
the grid's method order), and styles differ in more than color so the figures read in grayscale.

Panels (``<report>/figures/``):

- ``acc_vs_round_<dataset>``: global test accuracy vs round, one panel per alpha, mean ± std band over seeds;
- ``pareto_bytes_up_<dataset>`` / ``pareto_flops_<dataset>``: final accuracy vs bytes uploaded / client
  FLOPs per method (mean ± std over seeds), with the Pareto front (higher accuracy, lower cost);
- ``blocks_<dataset>_a<alpha>``: per method, the share of participating clients that trained each block
  in each round (all seeds pooled), from ``selections.csv``;
- ``partition_<dataset>_a<alpha>``: the client × label counts of the Dirichlet partition, per seed;
- ``budget_<dataset>``: final accuracy vs budget for suffix training (``tiny``) vs LoRA (``lora_budget``),
  only when the grid has such methods.
"""

from __future__ import annotations

import json
import logging
import math
import re
from dataclasses import dataclass
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from fl_core.report.load import BUDGET_METHODS, Results
from fl_core.report.stats import summarize

log = logging.getLogger(__name__)

# Okabe–Ito (colour-blind safe); distinct line styles and markers carry the identity in grayscale.
PALETTE = ["#000000", "#E69F00", "#56B4E9", "#009E73", "#D55E00", "#0072B2", "#CC79A7", "#882255", "#999999"]
LINESTYLES = ["-", "--", "-.", ":", (0, (5, 1)), (0, (3, 1, 1, 1, 1, 1)), (0, (1, 3)), (0, (8, 2, 1, 2))]
MARKERS = ["o", "s", "^", "D", "v", "P", "X", "*", "<", ">", "h", "p"]
RC = {
    "font.size": 9,
    "axes.titlesize": 9,
    "axes.labelsize": 9,
    "legend.fontsize": 8,
    "figure.dpi": 100,
    "savefig.dpi": 150,
    "axes.grid": True,
    "grid.alpha": 0.3,
}
HEATMAP = "Greys"


@dataclass(frozen=True)
class Style:
    color: str
    linestyle: object
    marker: str

    def kw(self) -> dict:
        return {"color": self.color, "linestyle": self.linestyle, "marker": self.marker}


class StyleMap:
    """label → (color, line style, marker), fixed by the label's position in the grid's method list."""

    def __init__(self, labels: list[str]) -> None:
        self.labels = list(labels)

    def __getitem__(self, label: str) -> Style:
        if label not in self.labels:
            self.labels.append(label)
        i = self.labels.index(label)
        return Style(PALETTE[i % len(PALETTE)], LINESTYLES[i % len(LINESTYLES)], MARKERS[i % len(MARKERS)])


def slug(x: str) -> str:
    return re.sub(r"[^A-Za-z0-9.+-]+", "_", str(x)).strip("_") or "x"


def save(fig, stem: Path) -> list[Path]:
    """``stem.png`` and ``stem.pdf``, with fixed metadata (byte-identical for the same input)."""
    stem.parent.mkdir(parents=True, exist_ok=True)
    png, pdf = stem.parent / f"{stem.name}.png", stem.parent / f"{stem.name}.pdf"
    engine = fig.get_layout_engine()
    if engine is not None:  # lay out once, not once per file
        engine.execute(fig)
        fig.set_layout_engine("none")
    fig.savefig(png, metadata={"Software": None})
    fig.savefig(pdf, metadata={"CreationDate": None, "ModDate": None, "Producer": None, "Creator": None})
    return [png, pdf]


def _legend_below(fig, handles, labels) -> None:
    if handles:
        fig.legend(handles, labels, loc="outside lower center", ncol=min(4, len(labels)), frameon=False)


def _panels(n: int, w: float = 3.6, h: float = 2.8, sharey: bool = True, legend_rows: int = 0):
    fig = Figure(figsize=(max(w * n, 5.0), h + 0.22 * legend_rows), layout="constrained")
    return fig, fig.subplots(1, n, squeeze=False, sharey=sharey)[0]


def _model_note(res: Results) -> str:
    rnd = res.cells.get("model_is_random")
    if rnd is not None and bool(rnd.fillna(False).astype(bool).any()):
        return " — RANDOM-WEIGHT TEST MODEL"
    return ""


# -- accuracy vs round --------------------------------------------------------------------------
def acc_vs_round(res: Results, styles: StyleMap, out: Path) -> list[Path]:
    written = []
    rounds = res.long("rounds")
    for d in res.datasets:
        fig, axes = _panels(len(res.alphas), legend_rows=math.ceil(len(res.labels) / 4))
        handles = {}
        for ax, a in zip(axes, res.alphas, strict=True):
            sub = rounds[(rounds.dataset == d) & (rounds.alpha == a)] if not rounds.empty else rounds
            for lab in res.labels:
                r = sub[sub.label == lab] if not sub.empty else sub
                if r.empty or "accuracy" not in r:
                    continue
                r = r.dropna(subset=["accuracy"])
                g = r.groupby("round").accuracy
                m, s, n = g.mean(), g.std(ddof=1).fillna(0.0), g.count()
                x = m.index.to_numpy() + 1
                st = styles[lab]
                (h,) = ax.plot(x, 100 * m.to_numpy(), markersize=4, linewidth=1.3, **st.kw())
                if n.max() > 1:
                    ax.fill_between(
                        x,
                        100 * (m - s).to_numpy(),
                        100 * (m + s).to_numpy(),
                        color=st.color,
                        alpha=0.12,
                        linewidth=0,
                    )
                handles[lab] = h
            ax.set_title(f"{d}, alpha = {a}")
            ax.set_xlabel("round")
            ax.xaxis.get_major_locator().set_params(integer=True)
        axes[0].set_ylabel("global test accuracy (%)")
        if not handles:  # nothing finished for this dataset yet
            continue
        fig.suptitle(f"Accuracy vs round (mean ± std over seeds){_model_note(res)}")
        _legend_below(fig, list(handles.values()), list(handles.keys()))
        written += save(fig, out / f"acc_vs_round_{slug(d)}")
    return written


# -- Pareto fronts ------------------------------------------------------------------------------
def pareto_front(points: list[tuple[float, float]]) -> list[int]:
    """Indices of the points no other point beats (lower cost and higher accuracy), by increasing cost."""
    order = sorted(range(len(points)), key=lambda i: (points[i][0], -points[i][1]))
    front, best = [], -math.inf
    for i in order:
        if points[i][1] > best:
            front.append(i)
            best = points[i][1]
    return front


def pareto(res: Results, styles: StyleMap, out: Path, cost: str, xlabel: str, name: str) -> list[Path]:
    written = []
    ok = res.ok()
    for d in res.datasets:
        fig, axes = _panels(len(res.alphas), legend_rows=math.ceil(len(res.labels) / 4))
        handles = {}
        for ax, a in zip(axes, res.alphas, strict=True):
            pts, labs = [], []
            for lab in res.labels:
                g = ok[(ok.dataset == d) & (ok.alpha == a) & (ok.label == lab)]
                sx, sy = summarize(g[cost]), summarize(g.final_accuracy)
                if sx.n == 0 or sy.n == 0:
                    continue
                st = styles[lab]
                h = ax.errorbar(
                    sx.mean,
                    100 * sy.mean,
                    xerr=0 if sx.n < 2 else sx.std,
                    yerr=0 if sy.n < 2 else 100 * sy.std,
                    color=st.color,
                    marker=st.marker,
                    markersize=6,
                    linestyle="none",
                    capsize=2,
                    elinewidth=0.8,
                )
                handles[lab] = h
                pts.append((sx.mean, sy.mean))
                labs.append(lab)
            if pts:
                f = pareto_front(pts)
                ax.step(
                    [pts[i][0] for i in f],
                    [100 * pts[i][1] for i in f],
                    where="post",
                    color="0.3",
                    linestyle="--",
                    linewidth=0.9,
                    zorder=0,
                )
                ax.scatter(
                    [pts[i][0] for i in f],
                    [100 * pts[i][1] for i in f],
                    s=110,
                    facecolors="none",
                    edgecolors="0.3",
                    linewidths=0.8,
                    zorder=0,
                )
                xs = [p[0] for p in pts if p[0] > 0]
                if xs and max(xs) / min(xs) > 20:
                    ax.set_xscale("log")
            ax.set_title(f"{d}, alpha = {a}")
            ax.set_xlabel(xlabel)
        axes[0].set_ylabel("final global test accuracy (%)")
        if not handles:
            continue
        fig.suptitle(f"Accuracy vs {xlabel} — Pareto front circled, dashed{_model_note(res)}")
        _legend_below(fig, list(handles.values()), list(handles.keys()))
        written += save(fig, out / f"{name}_{slug(d)}")
    return written


# -- block selection heatmaps -------------------------------------------------------------------
def block_frequency(
    res: Results, label: str, dataset: str, alpha: str
) -> tuple[np.ndarray, list[str], np.ndarray]:
    """(share of participating clients that trained each block [+ head] per round, row names, rounds)."""
    sub = res.filter(dataset=dataset, alpha=alpha, label=label)
    sel = sub.long("selections", status=("ok", "diverged"))
    nb = sub.cells.num_blocks.dropna()
    if sel.empty:
        return np.zeros((0, 0)), [], np.zeros(0, dtype=int)
    blocks = (
        sel["blocks"].fillna("").astype(str).map(lambda s: [int(float(b)) for b in s.split(";") if b.strip()])
    )
    n_blocks = int(nb.max()) if len(nb) else 1 + max((max(b) for b in blocks if b), default=-1)
    rounds = np.sort(sel["round"].unique())
    freq = np.zeros((n_blocks + 1, len(rounds)))
    for j, rnd in enumerate(rounds):
        m = (sel["round"] == rnd).to_numpy()
        count = int(m.sum())
        for bl in blocks[m]:
            for b in bl:
                if 0 <= b < n_blocks:
                    freq[b, j] += 1
        if "head" in sel:
            freq[n_blocks, j] = sel.loc[m, "head"].astype(str).str.lower().eq("true").sum()
        freq[:, j] /= max(count, 1)
    return freq, [f"block {b}" for b in range(n_blocks)] + ["head"], rounds


def blocks_heatmaps(res: Results, out: Path) -> list[Path]:
    written = []
    for d in res.datasets:
        for a in res.alphas:
            labs = [
                lab
                for lab in res.labels
                if not res.filter(dataset=d, alpha=a, label=lab)
                .long("selections", status=("ok", "diverged"))
                .empty
            ]
            if not labs:
                continue
            ncol = min(4, len(labs))
            nrow = math.ceil(len(labs) / ncol)
            fig = Figure(figsize=(2.9 * ncol + 1.0, 2.4 * nrow + 0.4), layout="constrained")
            axes = fig.subplots(nrow, ncol, squeeze=False)
            im = None
            for ax, lab in zip(axes.flat, labs, strict=False):
                f, names, rounds = block_frequency(res, lab, d, a)
                im = ax.imshow(
                    f,
                    aspect="auto",
                    origin="lower",
                    cmap=HEATMAP,
                    vmin=0,
                    vmax=1,
                    extent=(rounds[0] + 0.5, rounds[-1] + 1.5, -0.5, len(names) - 0.5),
                )
                ax.set_yticks(range(len(names)), names, fontsize=7)
                ax.set_title(lab)
                ax.set_xlabel("round")
                ax.grid(False)
                ax.xaxis.get_major_locator().set_params(integer=True)
            for ax in list(axes.flat)[len(labs) :]:
                ax.set_visible(False)
            fig.suptitle(
                f"Share of participating clients that trained each block — {d}, alpha = {a} "
                f"(all seeds){_model_note(res)}"
            )
            if im is not None:
                fig.colorbar(im, ax=axes, shrink=0.8, label="share of clients")
            written += save(fig, out / f"blocks_{slug(d)}_a{slug(a)}")
    return written


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
    ax.set_xticks(range(len(names)), names, rotation=45, ha="right", fontsize=7)
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
            fig, axes = _panels(len(seeds), w=3.4, h=0.25 * n_clients + 1.6, sharey=False)
            for ax, s, part in zip(axes, seeds, parts, strict=True):
                plot_partition(ax, part, f"seed {s}")
            fig.suptitle(f"Client × label counts — {d}, alpha = {a}")
            written += save(fig, out / f"partition_{slug(d)}_a{slug(a)}")
    return written


# -- budget-aware scheme ------------------------------------------------------------------------
FAMILY = {"tiny": "suffix training (tiny)", "lora_budget": "LoRA (lora_budget)"}


def _budget_key(b) -> tuple:
    try:
        return (0, float(b), "")
    except (TypeError, ValueError):
        return (1, 0.0, str(b))


def budget_rows(res: Results) -> pd.DataFrame:
    """The cells of ``tiny`` / ``lora_budget`` methods with a ``budget`` param, with that budget and the
    method family (name + the params, other than the budget, that vary between its labels) as columns."""
    c = res.cells[res.cells.method.isin(BUDGET_METHODS)].copy()
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
        fam.append(FAMILY.get(m, m) + (f" ({', '.join(extra)})" if extra else ""))
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
        fig, axes = _panels(len(res.alphas), legend_rows=math.ceil((len(fams) + 1) / 4))
        handles = {}
        for ax, a in zip(axes, res.alphas, strict=True):
            here = c[(c.dataset == d) & (c.alpha == a)]
            for k, fam in enumerate(fams):
                g = here[here.family == fam]
                st = fam_style[fam]
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
                    continue
                pts.sort()
                handles[fam] = ax.errorbar(
                    [p[0] for p in pts],
                    [p[1] for p in pts],
                    yerr=[p[2] for p in pts],
                    capsize=2,
                    markersize=5,
                    linewidth=1.3,
                    **st.kw(),
                )
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
            ax.set_xticks(range(len(ticks)), ticks)
            ax.set_xlim(-0.5, len(ticks) - 0.5)
            ax.set_title(f"{d}, alpha = {a}")
            ax.set_xlabel("budget (fraction of full fine-tuning's cost)")
        axes[0].set_ylabel("final global test accuracy (%)")
        fig.suptitle(f"Suffix training vs LoRA under a budget (mean ± std over seeds){_model_note(res)}")
        _legend_below(fig, list(handles.values()), list(handles.keys()))
        written += save(fig, out / f"budget_{slug(d)}")
    return written


def all_figures(res: Results, out: Path, errors: dict[str, str] | None = None) -> dict[str, list[Path]]:
    """Every panel; returns panel kind → files written (PNG and PDF). ``budget`` is empty when the grid
    has no budget-aware methods. A panel that fails to draw is logged and left out (its error goes into
    ``errors``), so one bad panel never costs the rest of the report."""
    styles = StyleMap(res.labels)
    panels = {
        "acc_vs_round": lambda: acc_vs_round(res, styles, out),
        "pareto_bytes_up": lambda: pareto(
            res, styles, out, "bytes_up", "bytes uploaded (client → server)", "pareto_bytes_up"
        ),
        "pareto_flops": lambda: pareto(res, styles, out, "client_flops", "client FLOPs", "pareto_flops"),
        "blocks": lambda: blocks_heatmaps(res, out),
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
    return written
