"""Accuracy parity of ``fl.precision`` bf16 vs fp32 on the reference grid's converged cells, and the
cost of a converged cell in both precisions (seconds and client FLOPs), paired cell by cell.

The bf16 side is the published reference grid (``configs/reference_v1.yaml`` runs in bf16): its raw store,
else its compact copy ``results/reference_v1/runs.csv.gz``. The fp32 side is the same cells with only
``fl.precision`` changed, for the methods and seeds below, run here as a resumable sweep into
``results/reference_fp32/``: its raw runs stay out of git, its compact copy ``runs.csv.gz`` is committed,
so a fresh clone's run restores the finished fp32 cells and runs only the rest. A pair is
(dataset, alpha, method, seed): the same partition, schedule, tuned lr and initial head. The paired
difference bf16 - fp32 of the final test accuracy is reported with its 95 % t interval.

    python benchmarks/precision_parity.py             # in `make perf`; runs the missing fp32 cells first
    python benchmarks/precision_parity.py --no-run    # after a stopped run: keep what finished, pair it

Writes results/perf/perf_precision_parity.csv and the ``parity`` section of results/perf/README.md.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from harness import out_dir, publish, stamp, with_fl  # benchmarks/ is the script's dir
from scipy import stats

from fl_core.compact import COMPACT, materialize, write_compact
from fl_core.config import GridConfig, RunConfig
from fl_core.report.publish import report_dir, restore_published
from fl_core.store import ResultStore
from fl_core.validate import load_grid

METHODS = ("full", "top-2", "lora", "fibecfed")
SEEDS = (0, 1, 2)


def fp32_grid(
    reference: GridConfig, methods=METHODS, seeds=SEEDS, out: str = "results/reference_fp32"
) -> GridConfig:
    """The reference grid's cells of ``methods`` x ``seeds`` in fp32 (nothing else changed)."""
    return reference.model_copy(
        update={
            "name": "reference_fp32",
            "methods": [m for m in reference.methods if m.display in methods],
            "seeds": list(seeds),
            "fl": reference.fl.model_copy(update={"precision": "fp32"}),
            "output_dir": out,
            "report_dir": None,
        }
    )


def twin(cell: RunConfig, precision: str) -> RunConfig:
    return with_fl(cell, precision=precision)


def bf16_store(reference: GridConfig) -> ResultStore:
    """The reference grid's raw store, or its published compact copy unpacked."""
    raw = ResultStore(reference.output_dir)
    compact = Path(reference.report_dir or reference.output_dir) / COMPACT
    if raw.runs.is_dir() and any(raw.runs.iterdir()) or not compact.is_file():
        return raw
    return ResultStore(materialize(compact))


def keep_finished(grid: GridConfig, run: bool = True) -> int:
    """Run the grid's missing cells (``run=False``: only restore those its committed compact copy holds),
    then rewrite that copy from the raw store, so a stopped run's finished cells survive in git; returns
    how many cells the copy holds."""
    from fl_core.sweep import run_sweep

    if run:
        run_sweep(grid, backend=grid.backend, progress=False)  # the reference grid's: Ray, 1 thread per cell
    else:
        restore_published(grid)
    return write_compact(grid.output_dir, [c.hash() for c in grid.cells()], report_dir(grid) / COMPACT)


def cell_row(store: ResultStore, cell: RunConfig) -> dict | None:
    """The facts of one finished ok cell (None if it is not in ``store`` or did not finish ok)."""
    h = cell.hash()
    if not store.verify(h):
        return None
    res = store.load_result(h)
    if res["status"] != "ok":
        return None
    rounds = store.load_table(h, "rounds").dropna(subset=["accuracy"])
    costs = store.load_table(h, "costs")
    train = costs[costs.kind == "train"]
    return {
        "dataset": cell.dataset,
        "alpha": cell.alpha,
        "method": cell.method.display,
        "seed": cell.seed,
        "precision": cell.fl.precision,
        "accuracy": float(rounds.accuracy.iloc[-1]),
        "cell_s": round(float(res["info"]["wall_s"]), 1),
        "client_train_s": round(float(train.wall_s.sum()), 1),
        "client_tflops": round(float((train.flops_fwd + train.flops_bwd).sum()) / 1e12, 3),
        "config_hash": h,
    }


def paired(df: pd.DataFrame, col: str) -> dict:
    """Mean of bf16 - fp32 over pairs with its 95 % t interval (nan half-width for one pair)."""
    w = df.pivot_table(index=["dataset", "alpha", "method", "seed"], columns="precision", values=col)
    d = (w["bf16"] - w["fp32"]).dropna().to_numpy()
    half = stats.t.ppf(0.975, len(d) - 1) * d.std(ddof=1) / np.sqrt(len(d)) if len(d) > 1 else float("nan")
    return {"pairs": len(d), "mean_diff": d.mean(), "ci95_lo": d.mean() - half, "ci95_hi": d.mean() + half}


def summarize(df: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    rows = [{"method": m, **paired(g, "accuracy")} for m, g in df.groupby("method", sort=False)]
    rows.append({"method": "all", **paired(df, "accuracy")})
    cost = df.groupby(["method", "precision"], sort=False)[
        ["accuracy", "cell_s", "client_train_s", "client_tflops"]
    ].mean()
    cost = cost.unstack("precision")
    speed = (cost["cell_s"]["fp32"] / cost["cell_s"]["bf16"]).rename("cell_speedup")
    return pd.DataFrame(rows).round(4), pd.concat([cost.round(3), speed.round(2)], axis=1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reference", default="configs/reference_v1.yaml")
    ap.add_argument("--no-run", action="store_true", help="pair what both stores hold; run nothing")
    args = ap.parse_args()
    t0 = time.perf_counter()
    ref = load_grid(args.reference)
    grid = fp32_grid(ref)
    print(f"{keep_finished(grid, run=not args.no_run)} fp32 cells kept in {report_dir(grid) / COMPACT}")
    fp32, bf16 = ResultStore(grid.output_dir), bf16_store(ref)
    rows, pending = [], 0
    for c in grid.cells():
        pair = [cell_row(fp32, c), cell_row(bf16, twin(c, "bf16"))]
        if None in pair:
            pending += 1
            continue
        rows += pair
    if not rows:
        print(f"no complete pair yet ({pending} pending)")
        return
    df = pd.DataFrame(rows)
    df.to_csv(out_dir() / "perf_precision_parity.csv", index=False)
    diff, cost = summarize(df)
    cost.columns = [c if isinstance(c, str) else f"{c[0]}_{c[1]}" for c in cost.columns]
    publish(
        "parity",
        f"`python benchmarks/precision_parity.py` (in `make perf`): {os.cpu_count()} CPUs, torch "
        f"{torch.__version__}; {stamp()}",
        f"The reference grid's converged cells (`{args.reference}`: tuned lr, {ref.fl.rounds} rounds x "
        f"{ref.fl.clients_per_round} clients x {ref.fl.local_steps} steps) of {', '.join(METHODS)}, seeds "
        f"{list(SEEDS)}, both datasets, alpha {' and '.join(map(str, ref.alphas))}: the published bf16 cell "
        f"and the same cell in fp32 ({len(df) // 2} pairs; {pending} not run yet). Final test accuracy, "
        "bf16 - fp32, paired, 95 % t interval:",
        diff.to_markdown(index=False),
        "Mean per precision: final accuracy, whole-cell seconds, client training seconds, client "
        "training TFLOPs (analytic, the same in both); cell_speedup = fp32 / bf16 cell seconds. The "
        "full row is the cost of one converged `full` cell before (fp32) and after (bf16) issue 13:",
        cost.reset_index().to_markdown(index=False),
        seconds=time.perf_counter() - t0,
    )
    print(diff.to_string(index=False), cost.to_string(), sep="\n")


if __name__ == "__main__":
    main()
