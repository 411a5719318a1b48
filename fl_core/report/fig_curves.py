"""Global test accuracy vs round as small multiples: one row per alpha, one column per method family.

Each panel draws its family's methods (mean line, ± std band over seeds) and the reference method
(``full``) as a grey line, so every panel reads against the same yardstick; all panels share both
axes. The x axis counts rounds completed: a cell that evaluated before training (a ``rounds.csv`` row
with ``round = -1``: the pretrained body with its untrained head) starts at 0, so every curve starts
from the same point; stores without that row start at 1.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from matplotlib.ticker import MaxNLocator

from fl_core.metrics import ACCURACY, EVAL
from fl_core.report.load import Results
from fl_core.report.panels import family_groups, grid, model_note
from fl_core.report.partitions import partition_label
from fl_core.report.style import FAMILY_TITLES, REFERENCE_COLOR, StyleMap, save, slug


def curve(rows: pd.DataFrame, metric: str = ACCURACY) -> pd.DataFrame:
    """Per round completed (``round + 1``): mean, std (0 for one seed) and seed count of ``metric``."""
    if rows.empty or metric not in rows:
        return pd.DataFrame(columns=["x", "mean", "std", "n"])
    r = rows.dropna(subset=[metric])
    g = r.groupby("round")[metric]
    c = pd.DataFrame({"mean": g.mean(), "std": g.std(ddof=1).fillna(0.0), "n": g.count()})
    return c.reset_index().assign(x=lambda t: t["round"] + 1)[["x", "mean", "std", "n"]]


def _line(ax, c: pd.DataFrame, label: str, band: bool = True, linewidth: float = 1.3, **kw):
    (h,) = ax.plot(c.x, 100 * c["mean"], label=label, markersize=3.5, linewidth=linewidth, **kw)
    if band and (c.n > 1).any():
        lo, hi = 100 * (c["mean"] - c["std"]), 100 * (c["mean"] + c["std"])
        ax.fill_between(c.x, lo, hi, color=kw.get("color"), alpha=0.13, linewidth=0)
    return h


def acc_vs_round(res: Results, styles: StyleMap, out: Path, reference: str = "full") -> list[Path]:
    written = []
    rounds = res.long("rounds")
    groups = family_groups(res)
    for d in res.datasets:
        fig, axes = grid(len(res.alphas), len(groups), 2.8, 2.3, sharex=True, sharey=True)
        drawn = False
        for i, a in enumerate(res.alphas):
            here = rounds[(rounds.dataset == d) & (rounds.alpha == a)] if not rounds.empty else rounds
            for j, (fam, labs) in enumerate(groups):
                ax = axes[i, j]
                if not here.empty:
                    ref = curve(here[here.label == reference])
                    if len(ref):
                        _line(
                            ax,
                            ref,
                            f"{reference} (reference)",
                            band=False,
                            color=REFERENCE_COLOR,
                            linewidth=2.6,
                            zorder=1,
                        )
                    for lab in labs:
                        c = curve(here[here.label == lab]) if lab != reference else ref.iloc[0:0]
                        if len(c):
                            _line(ax, c, lab, zorder=2, **styles[lab].kw())
                            drawn = True
                ax.set_title(f"{FAMILY_TITLES.get(fam, fam)}, {partition_label(a)}")
                ax.xaxis.set_major_locator(MaxNLocator(integer=True, nbins=5))
                if i == len(res.alphas) - 1:
                    ax.set_xlabel("rounds completed")
                if j == 0:
                    ax.set_ylabel(EVAL[ACCURACY].display)
                if i == 0 and ax.get_legend_handles_labels()[0]:  # many curves: beside, not over, them
                    out_ = len(labs) > 6
                    where = (
                        {"loc": "upper left", "bbox_to_anchor": (1.02, 1.0)}
                        if out_
                        else {"loc": "lower right"}
                    )
                    ax.legend(fontsize=7, framealpha=0.85, handlelength=2.2, **where)
        if not drawn:
            continue
        fig.suptitle(
            f"Global test accuracy vs round, {d}{model_note(res)}\n"
            "(mean ± std over seeds; 0 = pretrained body, untrained head)"
        )
        written += save(fig, out / f"acc_vs_round_{slug(d)}")
    return written
