"""One cell of a sweep, as the sweep and the Ray workers run it: execute it, never raise for a
failure inside it, and summarise its result (headline numbers, provenance)."""

from __future__ import annotations

import time
import traceback
from typing import Any

import pandas as pd
import torch

from fl_core import simulator
from fl_core.checkpoint import Checkpoint
from fl_core.config import GridConfig, RunConfig, cell_name
from fl_core.errors import CellNotRunnable
from fl_core.faults import is_storage_error
from fl_core.metrics import LOSS, SUMMARY
from fl_core.provenance import git_revision, versions
from fl_core.tracking import Tracker


def headline(rounds: list[dict[str, Any]], costs: list[dict[str, Any]], window: int = 1) -> dict[str, Any]:
    """Headline numbers of one cell (what the summary table aggregates): every ``final_*`` / ``best_*``
    metric :data:`fl_core.metrics.SUMMARY` declares whose evaluation key the rows carry (accuracy or
    perplexity, personalized where evaluated; best in the metric's direction), and the cost totals.
    Each ``final_*`` number is the mean over the last ``window`` evaluations
    (``fl.final_window``; 1: the last one). The evaluation before round 0 (``round = -1``) starts the
    curves and is no result: it counts neither as a round run, nor for the best accuracy, nor in a window."""
    trained = [r for r in rounds if r["round"] >= 0]
    evals = [r for r in trained if LOSS in r]
    c = pd.DataFrame(costs)
    out: dict[str, Any] = {"rounds_run": len(trained)}
    tail = evals[-window:]
    for m in SUMMARY.values():  # the metric vocabulary: every final_* / best_* an evaluation row has
        kind, _, name = m.name.partition("_")
        if kind == "final" and tail and all(name in r for r in tail):
            out[m.name] = sum(r[name] for r in tail) / len(tail)
        elif kind == "best" and (vals := [r[name] for r in evals if name in r]):
            out[m.name] = max(vals) if m.higher else min(vals)
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
        "torch_threads": torch.get_num_threads(),  # float sums differ across thread counts
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
    if tracker:
        tracker.start(cell, cell_name(cell))
    try:
        res = simulator.run_cell(
            cell, on_round=tracker.log if tracker else None, progress=progress, checkpoint=checkpoint
        )
    except CellNotRunnable as err:
        result = {**base_result(cell), "status": "skipped", "reason": str(err)}
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
    summary = headline(res.rounds, res.costs, cell.fl.final_window)
    result = {**base_result(cell), "status": res.status, "info": res.info, "summary": summary}
    if res.status == "diverged":
        result["reason"] = f"non-finite loss or weights at round {res.rounds[-1]['round']}"
    if tracker:
        tracker.finish({"status": res.status, **summary})
    sel = [{**s, "blocks": ";".join(map(str, s["blocks"]))} for s in res.selections]
    return result, {"rounds": res.rounds, "costs": res.costs, "selections": sel}, {"partition": res.partition}


def checkpoint_for(grid: GridConfig, cell: RunConfig) -> Checkpoint:
    return Checkpoint(f"{grid.output_dir}/checkpoints/{cell.hash()}.pt", grid.checkpoint_every)
