"""What a sweep will do, read without writing or loading torch: the cells it will run, those it will
take back from the published compact copy, those already done (``layerbench sweep --dry-run`` and
the line before every sweep), and the store's damaged cells (each named with what is done about it)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from fl_core.compact import COMPACT, compact_hashes
from fl_core.config import GridConfig, RunConfig, cell_name
from fl_core.report.publish import report_dir
from fl_core.store import ResultStore

log = logging.getLogger(__name__)


@dataclass
class SweepPlan:
    todo: list[RunConfig]  # cells that will train
    restore: list[str] = field(default_factory=list)  # hashes the compact copy gives back
    done: int = 0  # selected cells already verified in the raw store
    compact: Path = Path(COMPACT)

    def line(self, grid: GridConfig, estimate: str = "", dry_run: bool = False) -> str:
        restored = "to restore" if dry_run else "restored"
        return (
            f"sweep {grid.name}: {len(self.todo)} cells to run, {len(self.restore)} {restored} from "
            f"{self.compact}, {self.done} already done" + (f"; {estimate}" if estimate else "")
        )


def plan_sweep(grid: GridConfig, cells: list[RunConfig] | None = None) -> SweepPlan:
    """The plan of a sweep over ``cells`` (default: the whole grid), before it restores anything."""
    store, compact = ResultStore(grid.output_dir), report_dir(grid) / COMPACT
    cells = grid.cells() if cells is None else cells
    verified = {c.hash() for c in grid.cells() if store.is_done(c.hash())}
    published = compact_hashes(compact)
    restore = sorted({c.hash() for c in grid.cells()} & published - verified)
    todo = [c for c in cells if c.hash() not in verified and c.hash() not in restore]
    done = sum(c.hash() in verified for c in cells)
    return SweepPlan(todo, restore, done, compact)


def damaged(store: ResultStore, cells: list[RunConfig]) -> dict[str, str]:
    """hash -> what is wrong, for each cell whose stored copy exists but fails its checksums."""
    return {
        c.hash(): store.damage(c.hash()) or "fails its checksums"
        for c in cells
        if store.path(c.hash()).exists() and not store.verify(c.hash())
    }


def announce_damage(
    store: ResultStore, cells: list[RunConfig], bad: dict[str, str], restored: list[str], compact: Path
) -> None:
    """One line per damaged cell: restored from the compact copy (which), or run again."""
    back = set(restored)
    for c in cells:
        h = c.hash()
        if h not in bad:
            continue
        what = f"restored it from the compact copy {compact}" if h in back else "running it again"
        log.warning(
            "cell %s: its stored copy %s is corrupted (%s); %s", cell_name(c), store.path(h), bad[h], what
        )
