"""Run a grid: expand cells, skip the finished ones, run the rest, write each one atomically."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from fl_core.cell import cell_name, checkpoint_for, execute_cell, failed_result
from fl_core.compact import COMPACT
from fl_core.config import GridConfig, RunConfig
from fl_core.duplicates import duplicate_result, find_duplicates
from fl_core.estimate import describe
from fl_core.faults import (
    announce_reruns,
    is_storage_error,
    stop_on_storage_fault,
    storage_guard,
    storage_oserror,
)
from fl_core.lock import store_lock
from fl_core.ray_backend import require_ray, run_cells_ray
from fl_core.report.publish import report_dir, restore_published
from fl_core.store import ResultStore
from fl_core.sweep_plan import SweepPlan, announce_damage, damaged
from fl_core.tracking import Tracker

log = logging.getLogger(__name__)


@dataclass
class SweepReport:
    total: int
    skipped_done: int
    ran: int = 0
    statuses: dict[str, int] = field(default_factory=dict)
    failed: list[str] = field(default_factory=list)
    wall_s: float = 0.0


def run_sweep(
    grid: GridConfig,
    backend: str = "sequential",
    progress: bool = True,
    cells: list[RunConfig] | None = None,
    wait_s: float = 0.0,
    locked: bool = False,
) -> SweepReport:
    """Run every unfinished cell of ``grid`` (or the given subset) and write each atomically, holding the
    store's lock (a second sweep waits ``wait_s``, then raises ``StoreBusy`` naming the holder's PID;
    ``locked``: the caller holds it already). A full or read-only disk stops the sweep with a
    ``StoreError`` (:mod:`fl_core.faults`)."""
    if locked:
        ResultStore(grid.output_dir).check_writable()
        return _run_locked(grid, backend, progress, cells)
    with store_lock(grid.output_dir, wait_s):
        ResultStore(grid.output_dir).check_writable()
        return _run_locked(grid, backend, progress, cells)


def _prepare(grid: GridConfig, backend: str, cells: list[RunConfig] | None) -> tuple[list, list, int]:
    """Clean partials, restore published cells (each damaged one named with what was done), and log
    the one line before the sweep; returns (cells, cells to run, cells already done)."""
    store = ResultStore(grid.output_dir)
    for p in store.clean_temp():
        log.info("removed a partial write left by a stopped run: %s", p)
    compact = report_dir(grid) / COMPACT
    grid_cells = grid.cells()  # built once: each reads the tuned file and validates a RunConfig
    bad = damaged(store, grid_cells)
    restored = restore_published(grid)
    announce_damage(store, grid_cells, bad, restored, compact)
    cells = grid_cells if cells is None else cells
    todo = _record_duplicates(store, grid_cells, [c for c in cells if not store.is_done(c.hash())])
    announce_reruns(store, todo, cell_name, told=bad)
    done = len(cells) - len(todo) - len(set(restored) & {c.hash() for c in cells})
    estimate = describe(grid, todo, backend) if todo else "nothing to train"
    log.info(SweepPlan(todo, restored, done, compact).line(grid, estimate))
    return cells, todo, len(cells) - len(todo)


def _record_duplicates(
    store: ResultStore, grid_cells: list[RunConfig], todo: list[RunConfig]
) -> list[RunConfig]:
    """Write a ``duplicate`` record for each cell of ``todo`` that repeats an earlier grid cell's run
    (:mod:`fl_core.duplicates`); returns the cells left to run."""
    if not todo:
        return todo
    dups = find_duplicates(grid_cells)
    for c in todo:
        if c.hash() in dups:
            store.write(c, duplicate_result(c, dups[c.hash()]), {}, {})
            log.info("%s: %s", cell_name(c), "same run as " + cell_name(dups[c.hash()]) + "; not run again")
    return [c for c in todo if c.hash() not in dups]


def _results(backend: str, todo: list[RunConfig], grid: GridConfig, tracker: Tracker, progress: bool):
    """(cell, outcome) of each cell of ``todo`` as it finishes; nothing to run starts no backend."""
    if backend not in ("sequential", "ray"):
        raise ValueError(f"unknown backend {backend!r}; allowed: sequential, ray")
    if not todo:
        return iter(())
    if backend == "ray":
        return run_cells_ray(todo, grid)
    if grid.threads_per_cell:
        import torch

        torch.set_num_threads(grid.threads_per_cell)
    return ((c, storage_guard(execute_cell, c, tracker, progress, checkpoint_for(grid, c))) for c in todo)


def _run_locked(grid: GridConfig, backend: str, progress: bool, cells: list[RunConfig] | None) -> SweepReport:
    from tqdm.auto import tqdm

    t0 = time.perf_counter()
    store = ResultStore(grid.output_dir)
    cells, todo, skipped = _prepare(grid, backend, cells)
    if backend == "ray":
        require_ray(len(todo), grid)
    report = SweepReport(total=len(cells), skipped_done=skipped)
    tracker = Tracker(grid.wandb, group=grid.name, root=grid.output_dir)
    bar = tqdm(
        total=len(cells),
        initial=report.skipped_done,
        desc=f"sweep {grid.name}",
        unit="cell",
        disable=not progress,
    )
    for cell, out in _results(backend, todo, grid, tracker, progress):
        if isinstance(out, OSError):
            stop_on_storage_fault(store, cell, cell_name(cell), out, failed_result, report.ran)
        result, tables, extra = out
        status = result["status"]
        try:
            store.write(cell, result, tables, extra)
        except Exception as err:
            if not is_storage_error(err):
                raise
            stop_on_storage_fault(
                store, cell, cell_name(cell), storage_oserror(err), failed_result, report.ran
            )
        checkpoint_for(grid, cell).clear()
        if status == "failed":
            log.error("cell %s failed: %s", cell_name(cell), result["reason"])
            report.failed.append(f"{cell_name(cell)}: {result['reason']}")
        report.ran += 1
        report.statuses[status] = report.statuses.get(status, 0) + 1
        bar.update(1)
        bar.set_postfix_str(f"last: {result.get('label')} {status}")
    bar.close()
    report.wall_s = time.perf_counter() - t0
    return report
