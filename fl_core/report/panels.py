"""Helpers every figure shares: families of the methods, shared axis scales, readable tick labels."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import EngFormatter, LogLocator, MaxNLocator, NullFormatter

from fl_core.report.load import Results
from fl_core.report.style import FAMILIES, StyleMap

#: an axis spans more than this ratio: log scale
LOG_RATIO = 10.0


def families_of(res: Results) -> dict[str, str]:
    """label → the family its cells recorded (``other`` where none did, e.g. an older store)."""
    fam = res.cells.get("family", pd.Series("", index=res.cells.index)).fillna("").astype(str)
    out = {}
    for lab in res.labels:
        known = [f for f in fam[res.cells.label == lab] if f]
        out[lab] = known[0] if known else "other"
    return out


def family_groups(res: Results) -> list[tuple[str, list[str]]]:
    """(family, its labels in grid order) for every family present, in :data:`FAMILIES` order."""
    fams = families_of(res)
    order = list(FAMILIES) + sorted(set(fams.values()) - set(FAMILIES))
    return [(f, [lab for lab in res.labels if fams[lab] == f]) for f in order if f in fams.values()]


def style_map(res: Results) -> StyleMap:
    return StyleMap(res.labels, families_of(res))


def model_note(res: Results) -> str:
    rnd = res.cells.get("model_is_random")
    if rnd is not None and bool(rnd.fillna(False).astype(bool).any()):
        return " — RANDOM-WEIGHT TEST MODEL"
    return ""


def grid(nrow: int, ncol: int, w: float, h: float, extra_h: float = 0.0, **kw):
    """A constrained-layout figure of ``nrow × ncol`` panels (axes always 2-D)."""
    fig = Figure(figsize=(max(w * ncol + 0.8, 5.0), h * nrow + 0.6 + extra_h), layout="constrained")
    return fig, fig.subplots(nrow, ncol, squeeze=False, **kw)


def ints(x) -> list[int]:
    """Block indices from a stored cell (``"0;2;5"``, ``"[0, 2, 5]"``, a list); [] for empty/NaN."""
    if isinstance(x, list | tuple):
        return [int(v) for v in x]
    if x is None or (isinstance(x, float) and np.isnan(x)):
        return []
    return [int(v) for v in re.findall(r"-?\d+", str(x))]


def cost_axis(axes, values: list[float]) -> None:
    """One x scale for every panel in ``axes`` (shared): log when the positive values span more than
    :data:`LOG_RATIO`; major ticks only, engineering labels (``2 G``), so labels stay short and apart."""
    pos = [v for v in values if v > 0 and np.isfinite(v)]
    log = bool(pos) and max(pos) / min(pos) > LOG_RATIO
    for ax in axes:
        if log:
            ax.set_xscale("log")
            ax.xaxis.set_major_locator(LogLocator(base=10, numticks=6))
            ax.xaxis.set_minor_formatter(NullFormatter())
        else:
            ax.xaxis.set_major_locator(MaxNLocator(nbins=4))
        ax.xaxis.set_major_formatter(EngFormatter(places=0, sep=" "))
    if pos:
        lo, hi = min(pos), max(pos)
        pad = (hi / lo) ** 0.08 if log else None
        for ax in axes:
            if log:
                ax.set_xlim(lo / pad, hi * pad)
            else:
                span = (hi - lo) or abs(hi) or 1.0
                ax.set_xlim(max(0.0, lo - 0.08 * span), hi + 0.08 * span)
