"""Per-client overhead of the simulator when clients are many and small (issue 26, item 9).

A cross-device round (100 clients, 10 per round) where each client takes only 2 optimizer steps:
everything ``run_round`` / ``run_client`` do besides a client's forward, loss, backward, gradient
clipping and optimizer step is overhead (plans, the global snapshot, restoring it, the delta, cost
records, optimizer creation, batch building, method hooks, aggregation). Each phase is timed with
``perf_counter`` around the real functions (patched in for the run, exclusive of nested phases); what
no phase covers is ``round (own)``, so the phases add up to the round's wall time. Per method one
round per repeat, the methods interleaved (the order rotating), median over the repeats. The fl
settings (precision, optimizer, clipping, prefix cache, batch 16 x 32 tokens) are the grid's.

Writes results/perf/perf_client_overhead.csv and the ``client_overhead`` section of
results/perf/README.md. Target: overhead <= 10 % of a client's time at 2 steps.

    python benchmarks/client_overhead.py            # ~3 min, 1 thread
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import os
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from harness import (  # benchmarks/ is the script's dir
    cells_of,
    host,
    load,
    out_dir,
    patch_internals,
    publish,
    stamp,
    with_fl,
)

import fl_core.client as client_mod
import fl_core.simulator as sim
import fl_core.trainer as trainer
from fl_core.config import RunConfig
from fl_core.context import PrefixCache, RunContext
from fl_core.cost_record import CostRecord
from fl_core.methods.base import Method
from fl_core.validate import load_grid

TARGET = 0.10
COMPUTE = ("forward + loss", "backward + clip + step")  # the training a bare PyTorch loop also does
HOOKS = ("client_begin", "order_batches", "after_backward", "keep_local", "client_end")


def clocks() -> np.ndarray:
    """(wall, this thread's CPU) seconds: CPU time does not count the time other jobs hold the core."""
    return np.array([time.perf_counter(), time.thread_time()])


class Phases:
    """Exclusive (wall, CPU) time per phase: a timed call nested in another is subtracted from its caller."""

    def __init__(self) -> None:
        self.seconds: dict[str, np.ndarray] = defaultdict(lambda: np.zeros(2))
        self._stack: list[np.ndarray] = []

    def wrap(self, name: str | Callable[..., str], fn: Callable) -> Callable:
        """``fn`` timed under ``name`` (or under ``name(*args)`` when it is a callable)."""

        @functools.wraps(fn)
        def timed(*args, **kwargs):
            self._stack.append(np.zeros(2))
            t0 = clocks()
            try:
                return fn(*args, **kwargs)
            finally:
                dt = clocks() - t0
                nested = self._stack.pop()
                self.seconds[name if isinstance(name, str) else name(*args)] += dt - nested
                if self._stack:
                    self._stack[-1] += dt

        return timed


@contextlib.contextmanager
def instrumented(ctx: RunContext, method: Method, phases: Phases) -> Iterator[None]:
    """The simulator's per-client code paths, each timed under its phase, for the duration (no hook in
    fl_core times them: the real functions are wrapped in place)."""
    model, w = ctx.model, phases.wrap
    restore = lambda values: "restore global values" if values is ctx.global_values else "apply aggregate"  # noqa: E731
    targets: list[tuple[Any, str, Callable]] = [
        (sim, "run_client", w("client bookkeeping (seed, delta, bytes)", client_mod.run_client)),
        (client_mod, "train_steps", w("train set-up (params, record)", client_mod.train_steps)),
        (client_mod, "local_batches", w("batch order (shuffle)", client_mod.local_batches)),
        (client_mod, "make_optimizer", w("optimizer creation", client_mod.make_optimizer)),
        (client_mod, "Loop", functools.partial(trainer.Loop, loss_fn=w(COMPUTE[0], F.cross_entropy))),
        (client_mod, "train", w("train loop (own)", trainer.train)),
        (trainer, "_step", w(COMPUTE[1], trainer._step)),
        (trainer, "step_flops", w("cost records", trainer.step_flops)),
        (trainer, "client_step_memory", w("cost records", trainer.client_step_memory)),
        (CostRecord, "add_pass", w("cost records", CostRecord.add_pass)),
        (ctx.costs, "add", w("cost records", ctx.costs.add)),
        (ctx, "logits", w("batch tensors", ctx.logits)),
        (ctx, "tensors", w("batch tensors", ctx.tensors)),
        (PrefixCache, "hidden", w("batch tensors", PrefixCache.hidden)),
        (ctx, "trainable_names", w("plans + names", ctx.trainable_names)),
        (method, "configure_train", w("plans + names", method.configure_train)),
        (model, "forward", w(COMPUTE[0], model.forward)),
        (model, "forward_from", w(COMPUTE[0], model.forward_from)),
        (model, "set_trainable", w("set trainable", model.set_trainable)),
        (model, "state", w("global snapshot", model.state)),
        (model, "load", w(restore, model.load)),
        (method, "aggregate", w("aggregate", method.aggregate)),
        *[(method, h, w("method hooks", getattr(method, h))) for h in HOOKS],
    ]
    with patch_internals(*targets):
        yield


def cross_device(cell: RunConfig, args: argparse.Namespace) -> RunConfig:
    """The grid's cell with many small clients (IID, so every client has the same row count)."""
    over = {"num_clients": args.clients, "clients_per_round": args.per_round}  # rounds: the grid's
    over |= {"local_steps": args.steps, "precision": args.precision or cell.fl.precision}
    data = cell.data.model_copy(update={"min_partition_size": 1})
    return with_fl(cell, **over).model_copy(update={"alpha": "iid", "data": data})


def time_round(ctx: RunContext, method: Method, rnd: int, clients: list[int]) -> dict[str, np.ndarray]:
    """Per-client (wall, CPU) seconds of each phase in one round, ``round (own)`` the rest, ``total``."""
    phases = Phases()
    with instrumented(ctx, method, phases):
        t0 = clocks()
        sim.run_round(ctx, method, rnd, clients, [])
        total = (clocks() - t0) / len(clients)
    out = {k: v / len(clients) for k, v in phases.seconds.items()}
    out["round (own)"] = total - sum(out.values())
    out["total"] = total
    return out


def facts(ctx: RunContext, clients: list[int]) -> dict[str, Any]:
    """The median rows of the round's clients, and whether the prefix cache serves their frozen blocks."""
    cache = ctx.prefix_cache
    rows = float(np.median([len(ctx.clients[c]) for c in clients]))
    return {"client_rows": rows, "prefix_cached": cache is not None and cache.worth("train")}


def measure(cells: dict[str, RunConfig], reps: int) -> pd.DataFrame:
    """Long table (rep, method, phase, kind, wall and CPU seconds per client); one warm-up round each first."""
    runs = {}
    for label, cell in cells.items():
        ctx, method = sim.start_cell(cell)
        clients = sim.participation_schedule(ctx)[0]
        need = (cell.fl.local_steps - 1) * cell.fl.batch_size + 1
        if min(len(ctx.clients[c]) for c in clients) < need:
            raise SystemExit(f"{label}: a client has fewer than {need} rows ({cell.fl.local_steps} batches)")
        time_round(ctx, method, 0, clients)  # warm-up: allocator, prefix cache, lazy imports
        runs[label] = (ctx, method, clients)
    size = {k: facts(ctx, clients) for k, (ctx, _, clients) in runs.items()}
    rows, labels = [], list(cells)
    for rep in range(reps):
        for label in labels[rep % len(labels) :] + labels[: rep % len(labels)]:
            for phase, s in time_round(*runs[label][:2], 0, runs[label][2]).items():
                kind = "total" if phase == "total" else "compute" if phase in COMPUTE else "overhead"
                row = {"rep": rep, "method": label, "phase": phase, "kind": kind}
                rows.append({**row, "seconds": s[0], "cpu_seconds": s[1], **size[label]})
        print(f"rep {rep + 1}/{reps} done", flush=True)
    return pd.DataFrame(rows)


def summarize(df: pd.DataFrame) -> pd.DataFrame:
    """Per method: median client / compute / overhead wall seconds, overhead share (median, min, max;
    ``cpu_share``: the median share in CPU time, what other jobs on the host cannot inflate)."""
    per_rep = df.pivot_table(index=["method", "rep"], columns="kind", values="seconds", aggfunc="sum")
    per_rep["share"] = per_rep["overhead"] / per_rep["total"]
    cpu = df.pivot_table(index=["method", "rep"], columns="kind", values="cpu_seconds", aggfunc="sum")
    per_rep["cpu_share"] = cpu["overhead"] / cpu["total"]
    g = per_rep.groupby(level="method", sort=False)
    out = pd.DataFrame(
        {
            "client_ms": g["total"].median() * 1e3,
            "compute_ms": g["compute"].median() * 1e3,
            "overhead_ms": g["overhead"].median() * 1e3,
            "overhead_share": g["share"].median(),
            "share_min": g["share"].min(),
            "share_max": g["share"].max(),
            "cpu_share": g["cpu_share"].median(),
            "client_rows": df.groupby("method").client_rows.first(),
            "prefix_cached": df.groupby("method").prefix_cached.first(),
            "reps": g.size(),
        }
    )
    out["target"] = f"<= {TARGET:.0%}"
    out["ok"] = out.overhead_share <= TARGET
    out = out.reindex(df.method.unique())
    ms = ["client_ms", "compute_ms", "overhead_ms"]
    out[ms] = out[ms].round(1)
    return out.round(4).reset_index()


def breakdown(df: pd.DataFrame) -> pd.DataFrame:
    """Median milliseconds per client of each phase (rows) per method (columns)."""
    med = df.groupby(["phase", "method"], sort=False).seconds.median().unstack("method") * 1e3
    kinds = df.drop_duplicates("phase").set_index("phase").kind
    order = sorted(
        med.index, key=lambda p: (["compute", "overhead", "total"].index(kinds[p]), -med.loc[p].max())
    )
    med = med.loc[order, df.method.unique()].round(3)
    med.insert(0, "kind", kinds[order])
    return med.reset_index()


def pick_cells(
    config: str, dataset: str | None, labels: list[str], args: argparse.Namespace
) -> dict[str, RunConfig]:
    grid = load_grid(config, {"tuned": None})  # its fl settings only (a grid may not be tuned yet)
    dataset = dataset or ("rotten_tomatoes" if "rotten_tomatoes" in grid.datasets else grid.datasets[0])
    cells = {}
    for label in labels:
        match = cells_of(grid, label, dataset=dataset)
        if not match:
            raise SystemExit(f"{config} has no {label!r} cell on {dataset}")
        cells[label] = cross_device(match[0], args)
    return cells


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default="configs/reference.yaml", help="the grid whose fl settings are used")
    ap.add_argument("--dataset", help="default: rotten_tomatoes if the grid has it, else its first")
    ap.add_argument(
        "--methods", nargs="+", default=["full", "top-2", "lora"], help="method labels of the grid"
    )
    ap.add_argument("--clients", type=int, default=100)
    ap.add_argument("--per-round", type=int, default=10)
    ap.add_argument("--steps", type=int, default=2, help="optimizer steps per client")
    ap.add_argument("--reps", type=int, default=7, help="interleaved repeats (one round per method each)")
    ap.add_argument("--precision", choices=["fp32", "bf16"], help="default: the grid's fl.precision")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, help="default: results/perf")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    t0, load_start, busy = time.perf_counter(), load(), os.getloadavg()[0]
    cells = pick_cells(args.config, args.dataset, args.methods, args)
    df = measure(cells, args.reps)
    summary, parts = summarize(df), breakdown(df)
    out = args.out or out_dir()
    out.mkdir(parents=True, exist_ok=True)
    df.to_csv(out / "perf_client_overhead.csv", index=False)
    cell = next(iter(cells.values()))
    fl = cell.fl
    command = " ".join(["python benchmarks/client_overhead.py", *(sys.argv[1:] if argv is None else argv)])
    publish(
        "client_overhead",
        f"`{command}` (in `make perf`): {host()}; load average {load_start} at start, {load()} at the "
        f"end; torch {torch.__version__}, {args.threads} thread(s); {stamp()}",
        f"Per-client cost of the simulator with many small clients: `{args.config}`'s fl settings on "
        f"{cell.dataset} ({cell.model}, {fl.precision}, {fl.optimizer}, batch {fl.batch_size} x "
        f"{fl.max_len} tokens, prefix cache {'on' if fl.prefix_cache else 'off'}, {fl.rounds} rounds), {args.clients} IID "
        f"clients (client_rows: median rows of the round's clients), {args.per_round} per round, {args.steps} optimizer steps each. Compute = forward, loss, "
        "backward, clipping and optimizer step (the optimizer's state is allocated in its first step); "
        "overhead = everything else in `run_round` / `run_client`, round-level work (snapshot, "
        "aggregation) shared out per client. Medians over interleaved repeats (one round per method "
        "each); share_min / share_max: the spread; cpu_share: the share in this thread's CPU time "
        "(`time.thread_time`), which time-sharing with other jobs does not inflate. "
        f"Target: overhead <= {TARGET:.0%} of a client's time.",
        *(
            [
                f"The host was shared (1-min load above its {os.cpu_count()} CPUs): rerun on a quiet host "
                "for the published figure; cpu_share is the least affected column."
            ]
            if max(busy, os.getloadavg()[0]) > (os.cpu_count() or 1)
            else []
        ),
        summary.to_markdown(index=False),
        "Milliseconds per client, median per phase (exclusive of nested phases):",
        parts.to_markdown(index=False),
        seconds=time.perf_counter() - t0,
        out=out,
    )
    print(summary.to_string(index=False), "\n", parts.to_string(index=False), flush=True)


if __name__ == "__main__":
    main()
