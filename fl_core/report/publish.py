"""Which store a report is built from, and when it may replace the published one.

A grid's published report lives in its report dir beside ``runs.csv.gz`` (:mod:`fl_core.compact`),
which records the cells it was built from. Rules (``--force`` overrides the refusals):

- the raw store holds at least as many of the grid's cells as the published copy → build from the raw
  store, then rewrite the compact copy (what ``make bench`` does after a sweep);
- fewer (a fresh clone: none) but the compact copy covers them → build from the compact copy; the
  published report is that build already, so it is kept as is unless ``--force``;
- fewer and no compact copy to build from → refuse: the published report is never replaced by one
  with fewer cells.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from fl_core.compact import COMPACT, compact_hashes, materialize, restore
from fl_core.config import GridConfig
from fl_core.store import ResultStore, StoreError


def report_dir(grid: GridConfig) -> Path:
    """Where a grid's report (and its compact copy) goes: its ``report_dir`` if it sets one
    (``configs/reference.yaml``: ``results``, the published answer); else the grid named ``default``
    → its ``output_dir`` itself; any other grid → ``<output_dir>/<grid name>/`` (or ``output_dir``
    itself when it is already named after the grid, e.g. ``results/smoke`` for ``smoke``)."""
    if grid.report_dir:
        return Path(grid.report_dir)
    out = Path(grid.output_dir)
    if grid.name == "default" or out.name == grid.name:
        return out
    name = re.sub(r"[^A-Za-z0-9.+-]+", "_", grid.name).strip("_") or "x"
    return out / (f"report-{name}" if name in ("runs", "wandb", "tables", "figures") else name)


def restore_published(grid: GridConfig) -> list[str]:
    """The grid's cells its published compact copy holds and its raw store lacks, put back into the
    raw store (a fresh clone resumes a grid run across sessions from git, never re-running them)."""
    return restore(report_dir(grid) / COMPACT, grid.output_dir, [c.hash() for c in grid.cells()])


class PublishRefused(StoreError):
    """Building would replace a published report with one of fewer cells."""


@dataclass(frozen=True)
class Source:
    root: Path  # the store to load
    cells: int  # the grid's cells it holds
    from_compact: bool
    up_to_date: bool  # the published report is already this build


def published_cells(grid: GridConfig, out: Path) -> int:
    """Cells of the published report in ``out``: its compact copy, else the quick table's cells file."""
    if (out / COMPACT).is_file():
        return len(compact_hashes(out / COMPACT))
    cells = Path(grid.output_dir) / f"cells_{grid.name}.csv"
    if (out / "README.md").is_file() and cells.is_file():
        with_status = pd.read_csv(cells, usecols=["status"]).status
        return int((with_status != "missing").sum())
    return 0


def is_published(grid: GridConfig, out: Path) -> bool:
    return published_cells(grid, out) > 0


def choose_source(grid: GridConfig, out: Path, force: bool = False) -> Source:
    """Where ``build_report`` reads the grid's cells from (raises :class:`PublishRefused`)."""
    wanted = {c.hash() for c in grid.cells()}
    raw = ResultStore(grid.output_dir)
    n_raw = sum(raw.verify(h) for h in wanted)
    n_pub = published_cells(grid, out)
    if n_raw >= n_pub or (force and not (out / COMPACT).is_file()):
        return Source(Path(grid.output_dir), n_raw, False, False)
    in_compact = len(wanted & compact_hashes(out / COMPACT))
    if in_compact > n_raw:
        root = materialize(out / COMPACT)
        return Source(root, in_compact, True, not force and (out / "README.md").is_file())
    if force:
        return Source(Path(grid.output_dir), n_raw, False, False)
    raise PublishRefused(
        f"not replacing the published report in {out} ({n_pub} cells) with one of {n_raw} cells from "
        f"{raw.runs}: run the missing cells first, write it elsewhere with --report-dir, or pass --force"
    )
