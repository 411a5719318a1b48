"""Cells per hour of a reference-grid slice: one cell at a time with every core's thread (the
sequential backend) vs one cell per core with one thread each (the Ray backend, ``cpus_per_cell: 1``).

The same cells (one dataset, alpha and seed of ``configs/reference_v1.yaml``, a mix of methods) run
both ways into two fresh stores, each way twice, alternating which goes first; the median wall time
of each way is compared. Needs the ``[ray]`` extra (``make test-all`` installs it).

    python benchmarks/ray_throughput.py              # in `make perf`; results/perf/perf_ray.csv

Writes the ``ray`` section of results/perf/README.md.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

import pandas as pd
import torch
from harness import out_dir, publish, stamp  # benchmarks/ is the script's dir

from fl_core.config import GridConfig
from fl_core.validate import load_grid

METHODS = ("full", "top-2", "lora", "head")


def slice_grid(ref: GridConfig, backend: str, store: str, dataset: str, methods=METHODS) -> GridConfig:
    cores = os.cpu_count() or 1
    return ref.model_copy(
        update={
            "name": f"ray_throughput_{backend}",
            "datasets": [dataset],
            "alphas": [ref.alphas[-1]],
            "seeds": [ref.seeds[0]],
            "methods": [m for m in ref.methods if m.display in methods],
            "output_dir": store,
            "report_dir": None,
            "wandb": ref.wandb.model_copy(update={"mode": "off"}),
            "threads_per_cell": 1 if backend == "ray" else cores,
            "ray": ref.ray.model_copy(update={"cpus_per_cell": 1.0}),
            "checkpoint_every": 0,
        }
    )


def timed_sweep(grid: GridConfig, backend: str) -> float:
    from fl_core.sweep import run_sweep

    t0 = time.perf_counter()
    report = run_sweep(grid, backend=backend, progress=False)
    if report.ran != len(grid.cells()) or report.failed:
        raise RuntimeError(f"{backend}: {report}")
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reference", default="configs/reference_v1.yaml")
    ap.add_argument("--dataset", default="bbc_news")
    ap.add_argument("--reps", type=int, default=2)
    args = ap.parse_args()
    from fl_core.ray_backend import init_ray

    ref = load_grid(args.reference)
    init_ray(num_cpus=os.cpu_count())  # started once, outside the timings
    times: dict[str, list[float]] = {"sequential": [], "ray": []}
    for rep in range(args.reps):
        order = ("sequential", "ray") if rep % 2 == 0 else ("ray", "sequential")
        for backend in order:
            with tempfile.TemporaryDirectory(prefix=f"ray-throughput-{backend}-") as store:
                grid = slice_grid(ref, backend, store, args.dataset)
                times[backend].append(timed_sweep(grid, backend))
                torch.set_num_threads(os.cpu_count() or 1)  # the sequential backend sets it per sweep
    n = len(grid.cells())
    rows = [
        {
            "backend": b,
            "threads_per_cell": 1 if b == "ray" else os.cpu_count(),
            "cells": n,
            "wall_s_median": round(statistics.median(t), 1),
            "wall_s_all": ";".join(f"{x:.1f}" for x in t),
            "cells_per_hour": round(3600 * n / statistics.median(t), 1),
        }
        for b, t in times.items()
    ]
    df = pd.DataFrame(rows)
    df.to_csv(out_dir() / "perf_ray.csv", index=False)
    ratio = rows[0]["wall_s_median"] / rows[1]["wall_s_median"]
    publish(
        "ray",
        f"`python benchmarks/ray_throughput.py` (in `make perf`): {os.cpu_count()} CPUs, torch "
        f"{torch.__version__}, precision {ref.fl.precision}; {stamp()}",
        f"{n} cells of `{args.reference}` ({args.dataset}, alpha {ref.alphas[-1]}, seed {ref.seeds[0]}: "
        f"{', '.join(METHODS)}), each way {args.reps}x, alternating who goes first:",
        df.to_markdown(index=False),
        f"Ray (one 1-thread cell per core) / sequential (one {os.cpu_count()}-thread cell) throughput: "
        f"**{ratio:.2f}x**; the faster way is the one the README recommends for this grid.",
    )
    print(df.to_string(index=False), f"ray/sequential throughput {ratio:.2f}x", sep="\n")


if __name__ == "__main__":
    main()
