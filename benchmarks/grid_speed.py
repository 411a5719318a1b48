"""Cells per hour of a grid before vs after the switchable speed steps, side by side in one run.

"before" turns off what a config can turn off (``fl.prefix_cache``, ``fl.length_buckets``); the
steps built into the simulator (no_grad prefix, one shared model, cached tokenization, batched
no_grad evaluation) are measured one by one in ``speed_steps.py``. Each cell of the grid (one
alpha and one seed by default) runs both ways back to back, alternating which goes first, so host
drift hits both alike. Writes results/perf/perf_grid.csv and its section of results/perf/README.md.
"""

from __future__ import annotations

import argparse
import time

import pandas as pd
from harness import cells_of, out_dir, publish, torch_run, with_fl  # benchmarks/ is the script's dir
from tqdm.auto import tqdm

from fl_core.simulator import run_cell
from fl_core.validate import load_grid

BEFORE = {"prefix_cache": False, "length_buckets": 0}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--config", default="configs/default.yaml")
    ap.add_argument("--alpha", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    grid = load_grid(args.config)
    cells = cells_of(grid, alpha=args.alpha, seed=args.seed)
    if not cells:
        raise SystemExit(f"no cell of {args.config} has alpha={args.alpha} and seed={args.seed}")
    rows = []
    t0 = time.perf_counter()
    for i, cell in enumerate(tqdm(cells, desc="grid before/after", unit="cell")):
        variants = {
            "after": cell,
            "before": with_fl(cell, **BEFORE),
        }
        order = ["before", "after"] if i % 2 == 0 else ["after", "before"]
        row = {"dataset": cell.dataset, "method": cell.method.display}
        for name in order:
            s = time.perf_counter()
            try:
                res = run_cell(variants[name], progress=False)
                row[f"{name}_status"] = res.status
                row[f"{name}_accuracy"] = res.rounds[-1].get("accuracy")
            except Exception as e:  # noqa: BLE001 — e.g. a budget that fits nothing: timed and named
                row[f"{name}_status"] = f"{type(e).__name__}"
            row[f"{name}_s"] = round(time.perf_counter() - s, 2)
        row["speedup"] = round(row["before_s"] / row["after_s"], 2) if row["after_s"] else float("nan")
        rows.append(row)
    df = pd.DataFrame(rows)
    df.to_csv(out_dir() / "perf_grid.csv", index=False)
    before, after = df.before_s.sum(), df.after_s.sum()
    run = (
        f"`python benchmarks/grid_speed.py --config {args.config} --alpha {args.alpha} --seed {args.seed}`: "
        f"{torch_run()}"
    )
    summary = pd.DataFrame(
        [
            {
                "cells": len(df),
                "before_s": round(before, 1),
                "after_s": round(after, 1),
                "before_cells_per_hour": round(3600 * len(df) / max(before, 1e-9), 1),
                "after_cells_per_hour": round(3600 * len(df) / max(after, 1e-9), 1),
                "speedup": round(before / max(after, 1e-9), 2),
            }
        ]
    )
    publish(
        "grid",
        run,
        f"Every cell of `{args.config}` at alpha={args.alpha}, seed {args.seed}, run with `fl` {BEFORE} (before) "
        "and as configured (after), back to back. Accuracy differs where bucketing changes the batches.",
        summary.to_markdown(index=False),
        df.to_markdown(index=False),
        seconds=time.perf_counter() - t0,
    )
    print(summary.to_string(index=False))


if __name__ == "__main__":
    main()
