"""Run a grid: expand cells, skip the finished ones, run the rest, write each one atomically."""

from __future__ import annotations

import logging
import time
import traceback
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from fl_core.checkpoint import Checkpoint
from fl_core.config import GridConfig, RunConfig
from fl_core.errors import CellNotRunnable
from fl_core.faults import (
    announce_reruns,
    is_storage_error,
    stop_on_storage_fault,
    storage_guard,
    storage_oserror,
)
from fl_core.lock import store_lock
from fl_core.provenance import git_revision, versions
from fl_core.store import ResultStore
from fl_core.tracking import Tracker

log = logging.getLogger(__name__)


def cell_name(cell: RunConfig) -> str:
    return f"{cell.dataset}|a={cell.alpha}|{cell.method.display}|s={cell.seed}"


def summarize(rounds: list[dict[str, Any]], costs: list[dict[str, Any]]) -> dict[str, Any]:
    """Headline numbers of one cell (what the summary table aggregates)."""
    evals = [r for r in rounds if "accuracy" in r]
    c = pd.DataFrame(costs)
    out: dict[str, Any] = {"rounds_run": len(rounds)}
    if evals:
        out.update(
            final_accuracy=evals[-1]["accuracy"],
            final_macro_f1=evals[-1]["macro_f1"],
            best_accuracy=max(r["accuracy"] for r in evals),
            final_loss=evals[-1]["loss"],
        )
        for k in ("personal_accuracy", "personal_macro_f1"):
            if k in evals[-1]:
                out[f"final_{k}"] = evals[-1][k]
    if not c.empty:
        out.update(
            client_flops=float((c.flops_fwd + c.flops_bwd).sum()),
            bytes_up=int(c.bytes_up.sum()),
            bytes_down=int(c.bytes_down.sum()),
            client_wall_s=float(c.wall_s.sum()),
            extra_pass_flops=float((c.flops_fwd + c.flops_bwd)[c.kind != "train"].sum()),
        )
    return out


def base_result(cell: RunConfig) -> dict[str, Any]:
    return {
        "config_hash": cell.hash(),
        "method": cell.method.name,
        "label": cell.method.display,
        "dataset": cell.dataset,
        "alpha": cell.alpha,
        "seed": cell.seed,
        "model": cell.model,
        "versions": versions(),
        "git_revision": git_revision(),
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }


def failed_result(cell: RunConfig, reason: str, tb: str = "") -> dict[str, Any]:
    return {**base_result(cell), "status": "failed", "reason": reason, "traceback": tb}


def execute_cell(
    cell: RunConfig,
    tracker: Tracker | None = None,
    progress: bool = True,
    checkpoint: Checkpoint | None = None,
) -> tuple[dict, dict, dict]:
    """Run one cell; never raises for a method that cannot run or a crash inside the cell
    (KeyboardInterrupt passes through: the last checkpoint stays, no result is written)."""
    from fl_core import simulator

    base = base_result(cell)
    if tracker:
        tracker.start(cell, cell_name(cell))
    try:
        res = simulator.run_cell(
            cell, on_round=tracker.log if tracker else None, progress=progress, checkpoint=checkpoint
        )
    except CellNotRunnable as err:
        result = {**base, "status": "skipped", "reason": str(err)}
        if tracker:
            tracker.finish({"status": "skipped"})
        return result, {}, {}
    except Exception as err:  # noqa: BLE001 — recorded, the sweep goes on, and the CLI exits non-zero
        result = failed_result(cell, f"{type(err).__name__}: {err}", traceback.format_exc())
        if tracker:
            tracker.finish({"status": "failed"})
        if is_storage_error(err):  # not the cell's fault: the sweep records it and stops (fl_core/faults.py)
            raise
        return result, {}, {}
    summary = summarize(res.rounds, res.costs)
    result = {**base, "status": res.status, "info": res.info, "summary": summary}
    if res.status == "diverged":
        result["reason"] = f"non-finite loss or weights at round {res.rounds[-1]['round']}"
    if tracker:
        tracker.finish({"status": res.status, **summary})
    sel = [{**s, "blocks": ";".join(map(str, s["blocks"]))} for s in res.selections]
    return result, {"rounds": res.rounds, "costs": res.costs, "selections": sel}, {"partition": res.partition}


def checkpoint_for(grid: GridConfig, cell: RunConfig) -> Checkpoint:
    return Checkpoint(f"{grid.output_dir}/checkpoints/{cell.hash()}.pt", grid.checkpoint_every)


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
) -> SweepReport:
    """Run every unfinished cell of ``grid`` (or the given subset) and write each atomically, holding the
    store's lock (a second sweep waits ``wait_s``, then raises ``StoreBusy`` naming the holder's PID).
    A full or read-only disk stops the sweep with a ``StoreError`` (:mod:`fl_core.faults`)."""
    ResultStore(grid.output_dir).check_writable()
    with store_lock(grid.output_dir, wait_s):
        return _run_locked(grid, backend, progress, cells)


def _run_locked(grid: GridConfig, backend: str, progress: bool, cells: list[RunConfig] | None) -> SweepReport:
    from tqdm.auto import tqdm

    t0 = time.perf_counter()
    store = ResultStore(grid.output_dir)
    for p in store.clean_temp():
        log.info("removed a partial write left by a stopped run: %s", p)
    cells = grid.cells() if cells is None else cells
    todo = [c for c in cells if not store.is_done(c.hash())]
    announce_reruns(store, todo, cell_name)
    report = SweepReport(total=len(cells), skipped_done=len(cells) - len(todo))
    if report.skipped_done:
        log.info("resuming: %d of %d cells already done", report.skipped_done, len(cells))
    tracker = Tracker(grid.wandb, group=grid.name, root=grid.output_dir)
    bar = tqdm(
        total=len(cells),
        initial=report.skipped_done,
        desc=f"sweep {grid.name}",
        unit="cell",
        disable=not progress,
    )
    if backend == "ray":
        from fl_core.ray_backend import run_cells_ray

        results = run_cells_ray(todo, grid)
    elif backend == "sequential":
        if grid.threads_per_cell:
            import torch

            torch.set_num_threads(grid.threads_per_cell)
        results = (
            (c, storage_guard(execute_cell, c, tracker, progress, checkpoint_for(grid, c))) for c in todo
        )
    else:
        raise ValueError(f"unknown backend {backend!r}; allowed: sequential, ray")
    for cell, out in results:
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
