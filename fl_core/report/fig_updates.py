"""What was updated: per method, per (dataset, alpha), which blocks the clients trained and which the
server applied, round by round (all seeds pooled).

- the grey heatmap: the share of participating clients that trained each block (+ head) in each
  round, from ``selections.csv``;
- the second layer, where a method records it: orange dots on the blocks the server applied (a
  round's ``method_applied_blocks`` in ``rounds.csv``: FedTLU, random ``mode: server``), sized by the
  share of seeds that applied it; FibecFed's shared (GAL) / personal (PL) split on the block labels
  (``info_gal`` / ``info_pl`` of its plans) and its curriculum's data share as an extra top row
  (``method_data_share``);
- ``depth_<dataset>``: the suffix depth each device class trains (``tiny``: ``info_budget`` /
  ``info_t`` of the plans), one bar per method and class.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.lines import Line2D

from fl_core.diagnostics import column
from fl_core.report.load import Results
from fl_core.report.panels import grid, ints, model_note
from fl_core.report.partitions import partition_label
from fl_core.report.style import APPLIED_COLOR, HEATMAP, StyleMap, save, slug

#: the method diagnostics these panels read (declared in :mod:`fl_core.diagnostics`)
APPLIED, DATA_SHARE = column("round", "applied_blocks"), column("round", "data_share")
GAL, PL = column("client", "gal"), column("client", "pl")
DEPTH, BUDGET, SIT_OUT = column("client", "t"), column("client", "budget"), column("client", "sit_out")

OK = ("ok", "diverged")


def block_frequency(
    res: Results, label: str, dataset: str, alpha: str
) -> tuple[np.ndarray, list[str], np.ndarray]:
    """(share of participating clients that trained each block [+ head] per round, row names, rounds)."""
    sub = res.filter(dataset=dataset, alpha=alpha, label=label)
    sel = sub.long("selections", status=OK)
    nb = sub.cells.num_blocks.dropna()
    if sel.empty:
        return np.zeros((0, 0)), [], np.zeros(0, dtype=int)
    blocks = sel["blocks"].map(ints)
    n_blocks = int(nb.max()) if len(nb) else 1 + max((max(b) for b in blocks if b), default=-1)
    rounds = np.sort(sel["round"].unique())
    freq = np.zeros((n_blocks + 1, len(rounds)))
    for j, rnd in enumerate(rounds):
        m = (sel["round"] == rnd).to_numpy()
        for bl in blocks[m]:
            for b in bl:
                if 0 <= b < n_blocks:
                    freq[b, j] += 1
        if "head" in sel:
            freq[n_blocks, j] = sel.loc[m, "head"].astype(str).str.lower().eq("true").sum()
        freq[:, j] /= max(int(m.sum()), 1)
    return freq, [f"block {b}" for b in range(n_blocks)] + ["head"], rounds


def applied_share(res: Results, label: str, dataset: str, alpha: str, rounds: np.ndarray, n_blocks: int):
    """(n_blocks, len(rounds)): share of seeds whose server applied block b in round r; None when the
    method records no applied blocks."""
    r = res.filter(dataset=dataset, alpha=alpha, label=label).long("rounds", status=OK)
    if r.empty or APPLIED not in r:
        return None
    share = np.zeros((n_blocks, len(rounds)))
    for j, rnd in enumerate(rounds):
        rows = r[r["round"] == rnd]
        for bl in rows[APPLIED].map(ints):
            for b in bl:
                if 0 <= b < n_blocks:
                    share[b, j] += 1
        share[:, j] /= max(len(rows), 1)
    return share


def _split_names(sel: pd.DataFrame, names: list[str]) -> list[str]:
    """Block labels with FibecFed's role (``GAL`` shared / ``PL`` personal) where the plans say it."""
    if sel.empty or GAL not in sel:
        return names
    gal, pl = (
        set(ints(sel[GAL].dropna().iloc[0])),
        set(ints(sel.get(PL, pd.Series([""])).iloc[0])),
    )
    role = {b: "GAL" for b in gal} | {b: "PL" for b in pl}
    return [f"{n} · {role[i]}" if i in role else n for i, n in enumerate(names)]


def _data_share(res: Results, label: str, dataset: str, alpha: str, rounds: np.ndarray):
    r = res.filter(dataset=dataset, alpha=alpha, label=label).long("rounds", status=OK)
    if r.empty or DATA_SHARE not in r:
        return None
    m = r.groupby("round")[DATA_SHARE].mean()
    return np.array([m.get(x, np.nan) for x in rounds])


def _panel(ax, res: Results, lab: str, d: str, a: str):
    f, names, rounds = block_frequency(res, lab, d, a)
    sel = res.filter(dataset=d, alpha=a, label=lab).long("selections", status=OK)
    names = _split_names(sel, names)
    share = _data_share(res, lab, d, a, rounds)
    if share is not None:
        f, names = np.vstack([f, share[None, :]]), [*names, "data used"]
        for x, v in zip(rounds + 1, share, strict=True):
            ax.text(
                x,
                len(names) - 1,
                f"{100 * v:.0f}%",
                ha="center",
                va="center",
                fontsize=6,
                color="white" if v > 0.5 else "black",
            )
    x0, x1 = rounds[0] + 0.5, rounds[-1] + 1.5
    im = ax.imshow(
        f,
        aspect="auto",
        origin="lower",
        cmap=HEATMAP,
        vmin=0,
        vmax=1,
        extent=(x0, x1, -0.5, len(names) - 0.5),
    )
    applied = applied_share(res, lab, d, a, rounds, len(names) - 1 - (share is not None))
    if applied is not None:
        bb, jj = np.nonzero(applied)
        ax.scatter(
            rounds[jj] + 1,
            bb,
            s=28 * applied[bb, jj],
            color=APPLIED_COLOR,
            edgecolors="white",
            linewidths=0.6,
        )
    ax.set_yticks(range(len(names)), names, fontsize=7)
    ax.set_xticks(rounds[:: max(1, math.ceil(len(rounds) / 6))] + 1)
    ax.set_title(lab)
    ax.grid(False)
    return im, applied is not None


def blocks_heatmaps(res: Results, out: Path) -> list[Path]:
    written = []
    for d in res.datasets:
        for a in res.alphas:
            labs = [
                lab
                for lab in res.labels
                if not res.filter(dataset=d, alpha=a, label=lab).long("selections", status=OK).empty
            ]
            if not labs:
                continue
            ncol = min(5, len(labs))
            nrow = math.ceil(len(labs) / ncol)
            fig, axes = grid(nrow, ncol, 2.7, 2.2, extra_h=0.2)
            im, any_applied = None, False
            for k, (ax, lab) in enumerate(zip(axes.flat, labs, strict=False)):
                im, applied = _panel(ax, res, lab, d, a)
                any_applied |= applied
                if k // ncol == nrow - 1 or k + ncol >= len(labs):
                    ax.set_xlabel("round")
            for ax in list(axes.flat)[len(labs) :]:
                ax.set_visible(False)
            fig.suptitle(f"What was updated: {d}, {partition_label(a)} (all seeds){model_note(res)}")
            fig.colorbar(im, ax=axes, shrink=0.7, label="share of participating clients that trained it")
            if any_applied:
                dot = Line2D(
                    [], [], marker="o", linestyle="none", color=APPLIED_COLOR, markeredgecolor="white"
                )
                fig.legend(
                    [dot],
                    ["applied by the server (size: share of seeds)"],
                    loc="outside lower center",
                    frameon=False,
                )
            written += save(fig, out / f"blocks_{slug(d)}_a{slug(a)}")
    return written


def depth_rows(res: Results) -> pd.DataFrame:
    """(dataset, alpha, label, device class, depth, sits out) of every plan that records a suffix depth."""
    sel = res.long("selections", status=OK)
    if sel.empty or DEPTH not in sel or BUDGET not in sel:
        return pd.DataFrame()
    s = sel.dropna(subset=[BUDGET]).copy()
    s["device"] = s[BUDGET].astype(str)
    s["depth"] = pd.to_numeric(s[DEPTH], errors="coerce")
    s["sits_out"] = s.get(SIT_OUT, pd.Series(False, index=s.index)).astype(str).str.lower().eq("true")
    g = s.groupby(["dataset", "alpha", "label", "device"], sort=False)
    return g.agg(depth=("depth", "mean"), sits_out=("sits_out", "all")).reset_index()


def _device_key(x: str) -> tuple:
    try:
        return (0, float(x), "")
    except ValueError:
        return (1, 0.0, x)


def depth(res: Results, styles: StyleMap, out: Path) -> list[Path]:
    """Suffix depth per device class (blocks trained, + head), one bar per method; × marks a class
    that sits out (fits no budget)."""
    rows = depth_rows(res)
    if rows.empty:
        return []
    written = []
    for d in res.datasets:
        here = rows[rows.dataset == d]
        if here.empty:  # no budget-method cell of this dataset has run yet
            continue
        labs = [lab for lab in res.labels if lab in set(here.label)]
        devices = sorted(set(here.device), key=_device_key)
        fig, axes = grid(1, len(res.alphas), 3.4, 2.6, extra_h=0.3, sharey=True)
        width = 0.8 / max(1, len(labs))
        for ax, a in zip(axes[0], res.alphas, strict=True):
            for k, lab in enumerate(labs):
                g = here[(here.alpha == a) & (here.label == lab)].set_index("device")
                xs = [
                    i + (k - (len(labs) - 1) / 2) * width for i, dev in enumerate(devices) if dev in g.index
                ]
                ys = [
                    0.0 if g.loc[dev, "sits_out"] else g.loc[dev, "depth"]
                    for dev in devices
                    if dev in g.index
                ]
                ax.bar(xs, ys, width=width * 0.95, color=styles[lab].color, label=lab)
                out_x = [
                    x
                    for x, dev in zip(xs, [v for v in devices if v in g.index], strict=True)
                    if g.loc[dev, "sits_out"]
                ]
                ax.scatter(out_x, [0.2] * len(out_x), marker="x", color="black", zorder=3)
            ax.set_xticks(range(len(devices)), devices)
            ax.set_title(f"{d}, {partition_label(a)}")
            ax.set_xlabel("device class (budget)")
            ax.yaxis.get_major_locator().set_params(integer=True)
        axes[0, 0].set_ylabel("blocks trained (suffix depth)")
        entries = {n: h for ax in axes[0] for h, n in zip(*ax.get_legend_handles_labels(), strict=True)}
        fig.legend(
            entries.values(), entries, loc="outside lower center", ncol=min(5, len(entries)), frameon=False
        )
        fig.suptitle(f"Suffix depth per device class (× = sits out){model_note(res)}")
        written += save(fig, out / f"depth_{slug(d)}")
    return written
