"""The registry of the report's figures: a figure registers once (:func:`panel`), with its name, file
stems, title and draw function, and the report builder, the README's figure list and the contact
sheet (``figures/index.png``) all read :data:`PANELS`. The panels themselves: :mod:`.gallery`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from fl_core.report.load import Results
from fl_core.report.panels import style_map
from fl_core.report.style import StyleMap

NOTHING = "Nothing to plot: no cell with the data this panel needs finished."


def nothing_to_plot(_: object) -> str:
    """The README line of an empty panel, unless it names its own."""
    return NOTHING


@dataclass
class Inputs:
    """What a draw function gets: the results, the report folder, the grid's tuning record (if any),
    and ``memo``, where panels keep what the README reuses (e.g. the ranking behind the CD diagram)."""

    res: Results
    root: Path
    tuned: str | Path | None = None
    memo: dict[str, object] = field(default_factory=dict)

    @property
    def figures(self) -> Path:
        return self.root / "figures"

    @cached_property
    def styles(self) -> StyleMap:
        return style_map(self.res)


Draw = Callable[[Inputs], list[Path]]


@dataclass(frozen=True)
class Panel:
    """A registered figure. ``stems``: its files' stem pattern (``<…>`` a value, ``[…]`` optional);
    ``report_rc``: drawn in the report's rc style (False: matplotlib's, as autorank draws);
    ``if_empty``: the README line when it drew nothing (None: not listed, its own section says why);
    ``section``: the README section that shows it (the figure list then links there, not a copy)."""

    name: str
    title: str
    stems: str
    draw: Draw
    report_rc: bool = True
    if_empty: Callable[[Inputs], str | None] = nothing_to_plot
    section: str | None = None


PANELS: dict[str, Panel] = {}


def panel(
    name: str,
    title: str,
    stems: str,
    *,
    report_rc: bool = True,
    if_empty: Callable[[Inputs], str | None] = nothing_to_plot,
    section: str | None = None,
) -> Callable[[Draw], Draw]:
    """Decorator: registers the draw function under ``name`` (report order: registration order).
    A second panel of the same name is an error (re-importing the same function replaces it)."""

    def register(draw: Draw) -> Draw:
        old = PANELS.get(name)
        if old is not None and (old.draw.__module__, old.draw.__qualname__) != (
            draw.__module__,
            draw.__qualname__,
        ):
            raise ValueError(
                f"figure panel {name!r} is registered twice: {old.draw.__module__}.{old.draw.__qualname__} "
                f"and {draw.__module__}.{draw.__qualname__}"
            )
        if not title or not callable(draw) or not stems.startswith(name):
            raise ValueError(f"figure panel {name!r}: needs a title, a draw function and stems {name}…")
        PANELS[name] = Panel(name, title, stems, draw, report_rc, if_empty, section)
        return draw

    return register
