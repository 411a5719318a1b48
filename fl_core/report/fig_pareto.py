"""Final accuracy vs a cost (bytes uploaded, client FLOPs), one panel per alpha, with the Pareto front.

Every panel of a row has the same x and y scale (log x when the costs span more than 10×), major
ticks only with short engineering labels, one colour per method and a legend below at print size.
"""

from __future__ import annotations

import math
from pathlib import Path

from fl_core.metrics import ACCURACY, SUMMARY, final
from fl_core.report.load import Results
from fl_core.report.panels import cost_axis, family_groups, grid, model_note
from fl_core.report.partitions import partition_label
from fl_core.report.stats import summarize
from fl_core.report.style import StyleMap, save, slug

ACC = final(ACCURACY)


def pareto_front(points: list[tuple[float, float]]) -> list[int]:
    """Indices of the points no other point beats (lower cost and higher accuracy), by increasing cost."""
    order = sorted(range(len(points)), key=lambda i: (points[i][0], -points[i][1]))
    front, best = [], -math.inf
    for i in order:
        if points[i][1] > best:
            front.append(i)
            best = points[i][1]
    return front


def _points(res: Results, dataset: str, alpha: str, cost: str) -> list[tuple[str, object, object]]:
    ok = res.ok()
    out = []
    for lab in res.labels:
        g = ok[(ok.dataset == dataset) & (ok.alpha == alpha) & (ok.label == lab)]
        sx, sy = summarize(g[cost]), summarize(g[ACC])
        if sx.n and sy.n:
            out.append((lab, sx, sy))
    return out


def _draw_front(ax, pts: list[tuple[float, float]]) -> None:
    f = pareto_front(pts)
    xs, ys = [pts[i][0] for i in f], [100 * pts[i][1] for i in f]
    ax.step(xs, ys, where="post", color="0.3", linestyle="--", linewidth=0.9, zorder=0)
    ax.scatter(xs, ys, s=130, facecolors="none", edgecolors="0.3", linewidths=0.8, zorder=0)


def pareto(res: Results, styles: StyleMap, out: Path, cost: str, xlabel: str, name: str) -> list[Path]:
    written = []
    for d in res.datasets:
        fig, axes = grid(
            1, len(res.alphas), 3.4, 2.9, extra_h=0.25 * math.ceil(len(res.labels) / 5), sharey=True
        )
        axes, handles, xs = axes[0], {}, []
        for ax, a in zip(axes, res.alphas, strict=True):
            pts = _points(res, d, a, cost)
            for lab, sx, sy in pts:
                st = styles[lab]
                lo_err = min(sx.std, 0.9 * sx.mean) if sx.n > 1 else 0.0  # a log axis takes no x ≤ 0
                handles[lab] = ax.errorbar(
                    sx.mean,
                    100 * sy.mean,
                    xerr=[[lo_err], [sx.std if sx.n > 1 else 0.0]],
                    yerr=100 * sy.std if sy.n > 1 else 0.0,
                    color=st.color,
                    marker=st.marker,
                    markersize=6,
                    markeredgecolor="white",
                    markeredgewidth=0.5,
                    linestyle="none",
                    capsize=2,
                    elinewidth=0.8,
                )
                xs += [sx.mean - lo_err, sx.mean + (sx.std if sx.n > 1 else 0.0)]
            if pts:
                _draw_front(ax, [(sx.mean, sy.mean) for _, sx, sy in pts])
            ax.set_title(f"{d}, {partition_label(a)}")
            ax.set_xlabel(xlabel)
        cost_axis(axes, xs)
        axes[0].set_ylabel(SUMMARY[ACC].display)
        if not handles:
            continue
        fig.suptitle(f"Final accuracy vs {xlabel}: Pareto front dashed and circled{model_note(res)}")
        order = [lab for _, labs in family_groups(res) for lab in labs if lab in handles]  # by family
        fig.legend(
            [handles[lab] for lab in order],
            order,
            loc="outside lower center",
            ncol=min(5, len(handles)),
            frameon=False,
        )
        written += save(fig, out / f"{name}_{slug(d)}")
    return written
