"""The wall time a sweep's cells will take on this machine, from a short probe (a few seconds): build
the grid's model, time a few full fine-tuning steps at its batch and ``max_len`` (at the precision and
threads its cells run with) and one evaluation batch, then scale by each cell's step and evaluation
counts. Every cell is timed as full fine-tuning on full-length rows: head, top-k and LoRA cells and
length bucketing run faster, so the estimate is an upper bound of the training part."""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from fl_core.config import GridConfig, RunConfig
from fl_core.dataset_names import DATASET_ROWS
from fl_core.models import build_model
from fl_core.optim import local_optimizer
from fl_core.precision import autocast, resolve_precision
from fl_core.simulator import resolve_device
from fl_core.visits import evaluations

UNKNOWN_ROWS = 2000  # a local dataset's rows, when the cell does not cap them


@dataclass(frozen=True)
class Probe:
    step_s: float  # one full fine-tuning step at the grid's batch x max_len
    row_eval_s: float  # one row of evaluation (no_grad forward)
    build_s: float  # building the model (once per cell)
    precision: str
    threads: int


def cell_threads(grid: GridConfig, backend: str) -> int:
    if grid.threads_per_cell:
        return grid.threads_per_cell
    return max(1, int(grid.ray.cpus_per_cell)) if backend == "ray" else torch.get_num_threads()


def probe(grid: GridConfig, backend: str = "sequential", steps: int = 3) -> Probe:
    """Time ``steps`` full training steps (after one warm-up) and one evaluation batch of the grid's model."""
    fl, dev = grid.fl, resolve_device(grid.fl.device)
    precision = resolve_precision(fl.precision, dev)[0]
    threads, before = cell_threads(grid, backend), torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        t0 = time.perf_counter()
        m = build_model(grid.model, 4, seed=0).to(dev)
        build_s = time.perf_counter() - t0
        return Probe(
            *_time_model(m, fl.batch_size, fl.max_len, precision, dev, steps), build_s, precision, threads
        )
    finally:
        torch.set_num_threads(before)


def _time_model(
    m, batch: int, seq: int, precision: str, dev: torch.device, steps: int, budget_s: float = 3.0
) -> tuple[float, float]:
    """(seconds of one full training step, the fastest of up to ``steps``; seconds of one evaluated row)."""
    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(1000, m.arch.vocab, (batch, seq), generator=gen).to(dev)
    mask, y = torch.ones_like(ids), torch.randint(0, 4, (batch,), generator=gen).to(dev)
    params = list(m.params.values())
    m.set_trainable(set(m.params))
    opt = local_optimizer(params, "adamw", 1e-5)
    m.hf.train()
    times: list[float] = []
    start = time.perf_counter()
    for i in range(steps + 1):  # the first step warms up; stop early on a slow (or busy) machine
        if len(times) and time.perf_counter() - start > budget_s:
            break
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        with autocast(precision, dev):
            loss = F.cross_entropy(m.forward(ids, mask, 0), y)
        loss.backward()
        opt.step()
        if i:
            times.append(time.perf_counter() - t0)
    m.set_trainable(set())
    m.hf.eval()
    t0 = time.perf_counter()
    with torch.no_grad(), autocast(precision, dev):
        m.forward(ids, mask, 0)
    return min(times), (time.perf_counter() - t0) / batch


def train_rows(cell: RunConfig) -> int:
    rows = DATASET_ROWS.get(cell.dataset, UNKNOWN_ROWS) * (1 - cell.data.test_fraction)
    rows *= 1 - cell.data.val_fraction
    return int(min(rows, cell.data.max_train_samples or math.inf))


def cell_work(cell: RunConfig) -> tuple[int, int]:
    """(training steps, evaluated rows) of one cell, from its config (``centralized`` runs the steps
    of a whole ``full`` round per round: the same count)."""
    fl = cell.fl
    per_client = math.ceil(train_rows(cell) / fl.num_clients / fl.batch_size) * fl.local_epochs
    steps = fl.rounds * fl.clients_per_round * min(per_client, fl.local_steps or per_client)
    test = DATASET_ROWS.get(cell.dataset, UNKNOWN_ROWS) * cell.data.test_fraction
    test = min(test, cell.data.max_test_samples or math.inf)
    evals = evaluations(fl.rounds, fl.eval_every) + 1  # and the pretrained start
    return steps, int(2 * evals * test)  # the global model, then each client's test split


def estimate_s(cells: list[RunConfig], p: Probe, parallel: int = 1) -> float:
    total = 0.0
    for c in cells:
        steps, rows = cell_work(c)
        total += p.build_s + steps * p.step_s + rows * p.row_eval_s
    return total / max(1, parallel)


def parallel_cells(grid: GridConfig, backend: str) -> int:
    if backend != "ray":
        return 1
    return max(1, int((os.cpu_count() or 1) // grid.ray.cpus_per_cell))


def describe(grid: GridConfig, cells: list[RunConfig], backend: str) -> str:
    """``estimated wall time on this machine: ...`` for ``cells``, from a probe (a few seconds)."""
    p = probe(grid, backend)
    n = min(parallel_cells(grid, backend), len(cells))
    t = estimate_s(cells, p, n)
    when = f"{t / 3600:.1f} h" if t >= 5400 else f"{t / 60:.0f} min" if t >= 90 else f"{t:.0f} s"
    return (
        f"estimated wall time on this machine: {when} (probe: a full fine-tuning step {p.step_s:.3f} s at "
        f"batch {grid.fl.batch_size} x {grid.fl.max_len}, {p.precision}, {p.threads} thread(s); "
        f"{n} cell(s) at a time; an upper bound for cells that train fewer blocks)"
    )
