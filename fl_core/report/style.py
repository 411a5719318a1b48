"""The report's visual style, shared by every figure (and by other figure modules, e.g. a CD diagram).

- :data:`FAMILIES`: method families in display order (each method class declares its ``family``;
  the simulator records it in the cell's info, so the report never imports a method);
- :data:`FAMILY_COLORS`: one hue per family, light-to-dark shades for its members, picked so that
  every pair stays apart for normal and deuteranopic vision (``tests/report/test_pictures.py``
  checks it with :func:`deuteranopia` and :func:`delta_e`);
- :class:`StyleMap`: label → (colour, line style, marker), fixed by the grid's method order, so a
  method looks the same in every figure and markers alone tell methods apart in grayscale;
- :func:`save`: PNG + PDF with no timestamp (byte-identical for the same input).

:func:`deuteranopia` / :func:`delta_e` are hand-written (a 3×3 matrix and the CIELAB formula) so a
colour check needs no extra dependency for ~20 lines of arithmetic.
"""

from __future__ import annotations

import hashlib
import re
import string
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from matplotlib.colors import to_rgb

FAMILIES = ("references", "fedtlu", "selective", "lora", "budget", "other")
FAMILY_TITLES = {
    "references": "references",
    "fedtlu": "FedTLU family",
    "selective": "selective family",
    "lora": "LoRA family",
    "budget": "budget family",
    "other": "other methods",
}
#: per family, the shades its members take in grid order: picked greedily from the ColorBrewer ramp
#: of the family's hue (Greys/YlOrBr, Blues, Oranges, RdPu/Purples, BuGn/YlGn), each maximising its
#: least ΔE to those already picked, for normal and deuteranopic vision and against white
FAMILY_COLORS = {
    "references": ["#000000", "#feb340", "#7a7a7a", "#363636"],
    "fedtlu": ["#1764ab", "#6aaed6", "#08306b", "#a6cee4"],
    "selective": ["#862a04", "#e25508", "#fdb576", "#fd9a4e"],
    "lora": ["#a3017d", "#3f007d", "#f767a1", "#807cba"],
    "budget": ["#00522e", "#40aa5c", "#98d486", "#077331"],
}
#: the first shade of each family (the old flat palette's role: e.g. a notebook's own plots)
PALETTE = [shades[0] for shades in FAMILY_COLORS.values()]
#: every shade, most distinct first: what a method outside a known family (or past its family's
#: shades) takes, the first one not yet used in the figure
ALL_COLORS = [c for i in range(4) for shades in FAMILY_COLORS.values() for c in shades[i : i + 1]]
REFERENCE_COLOR = "0.72"  # the grey `full` line drawn in every accuracy panel
APPLIED_COLOR = "#e8491d"  # the server's applied blocks, over the grey block-usage heatmap
LINESTYLES = ["-", "--", "-.", ":", (0, (5, 1)), (0, (3, 1, 1, 1, 1, 1)), (0, (1, 3)), (0, (8, 2, 1, 2))]
MARKERS = ["o", "s", "^", "D", "v", "P", "X", "*", "<", ">", "h", "p", "d", "H", "8"]
RC = {
    "font.size": 9,
    "axes.titlesize": 9,
    "axes.labelsize": 9,
    "legend.fontsize": 8,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
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
    """label → (colour, line style, marker). The colour is the next unused shade of the label's
    family (``families``: label → family), else the first unused of :data:`ALL_COLORS`, so up to
    20 methods never share a colour; line style and marker follow the label's position in the grid's
    method list."""

    def __init__(self, labels: list[str], families: dict[str, str] | None = None) -> None:
        self.labels = list(labels)
        self.families = dict(families or {})
        self._colors: dict[str, str] = {}
        for lab in self.labels:
            self._assign(lab)

    def family(self, label: str) -> str:
        f = self.families.get(label, "other")
        return f if f in FAMILY_COLORS else "other"

    def _assign(self, label: str) -> str:
        if label not in self._colors:
            used = set(self._colors.values())
            free = [c for c in FAMILY_COLORS.get(self.family(label), []) if c not in used]
            free += [c for c in ALL_COLORS if c not in used]
            self._colors[label] = free[0] if free else ALL_COLORS[len(self._colors) % len(ALL_COLORS)]
        return self._colors[label]

    def __getitem__(self, label: str) -> Style:
        if label not in self.labels:
            self.labels.append(label)
        i = self.labels.index(label)
        return Style(self._assign(label), LINESTYLES[i % len(LINESTYLES)], MARKERS[i % len(MARKERS)])


# -- colour-vision checks -----------------------------------------------------------------------
#: Machado, Oliveira & Fernandes (2009), deuteranopia at severity 1.0, on linear RGB
DEUTERANOPIA = np.array(
    [[0.367322, 0.860646, -0.227968], [0.280085, 0.672501, 0.047413], [-0.011820, 0.042940, 0.968881]]
)
_SRGB_TO_XYZ = np.array(
    [[0.4124564, 0.3575761, 0.1804375], [0.2126729, 0.7151522, 0.0721750], [0.0193339, 0.1191920, 0.9503041]]
)
_WHITE = np.array([0.95047, 1.0, 1.08883])


def _linear(rgb: np.ndarray) -> np.ndarray:
    return np.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)


def deuteranopia(colors: list) -> np.ndarray:
    """Linear RGB (n, 3) of ``colors`` as a deuteranope sees them (Machado et al. 2009)."""
    lin = _linear(np.array([to_rgb(c) for c in colors]))
    return np.clip(lin @ DEUTERANOPIA.T, 0.0, 1.0)


def lab(linear_rgb: np.ndarray) -> np.ndarray:
    """CIELAB (D65) of linear RGB rows."""
    xyz = linear_rgb @ _SRGB_TO_XYZ.T / _WHITE
    f = np.where(xyz > (6 / 29) ** 3, np.cbrt(xyz), xyz / (3 * (6 / 29) ** 2) + 4 / 29)
    return np.stack([116 * f[:, 1] - 16, 500 * (f[:, 0] - f[:, 1]), 200 * (f[:, 1] - f[:, 2])], axis=1)


def delta_e(colors: list, simulate: bool = False) -> np.ndarray:
    """Pairwise CIE76 ΔE (n, n) of ``colors``, optionally as seen with deuteranopia."""
    lin = deuteranopia(colors) if simulate else _linear(np.array([to_rgb(c) for c in colors]))
    p = lab(lin)
    return np.linalg.norm(p[:, None, :] - p[None, :, :], axis=-1)


# -- files --------------------------------------------------------------------------------------
#: called with (figure, stem) before each save; the picture tests use it to inspect every figure
SAVE_OBSERVERS: list[Callable] = []


def slug(x: str) -> str:
    return re.sub(r"[^A-Za-z0-9.+-]+", "_", str(x)).strip("_") or "x"


#: savefig metadata that leaves no date, version or tool name in the file: the same figure, the same bytes
PNG_METADATA = {"Software": None}
PDF_METADATA = {"CreationDate": None, "ModDate": None, "Producer": None, "Creator": None}


def _subset_prefix(charset) -> str:
    """The six-letter tag of an embedded font subset, from the glyphs it holds (PDF ref. 5.5.3)."""
    digest = hashlib.sha256(repr(sorted(map(repr, charset))).encode()).digest()
    return "".join(string.ascii_uppercase[b % 26] for b in digest[:6]) + "+"


def stable_pdf_fonts() -> None:
    """By hand: matplotlib tags font subsets with ``hash(charset)``, which Python salts per process,
    so the same figure got other PDF bytes in every new process; this tag depends on the glyphs only."""
    from matplotlib.backends.backend_pdf import PdfFile

    PdfFile._get_subset_prefix = staticmethod(_subset_prefix)


def save(fig, stem: Path, **savefig_kw) -> list[Path]:
    """``stem.png`` and ``stem.pdf``, with fixed metadata (byte-identical for the same input);
    ``savefig_kw`` (e.g. ``bbox_inches="tight"``) go to both ``savefig`` calls."""
    stable_pdf_fonts()
    stem.parent.mkdir(parents=True, exist_ok=True)
    png, pdf = stem.parent / f"{stem.name}.png", stem.parent / f"{stem.name}.pdf"
    engine = fig.get_layout_engine()
    if engine is not None:  # lay out once, not once per file
        engine.execute(fig)
        fig.set_layout_engine("none")
    for observe in SAVE_OBSERVERS:
        observe(fig, stem)
    fig.savefig(png, metadata=PNG_METADATA, **savefig_kw)
    fig.savefig(pdf, metadata=PDF_METADATA, **savefig_kw)
    return [png, pdf]
