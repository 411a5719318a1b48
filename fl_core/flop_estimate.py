"""What a grid will cost on a device before it runs (printed by ``layerbench sweep CONFIG --dry-run``
beside :mod:`fl_core.estimate`'s probe of this machine): analytic step FLOPs
(:mod:`fl_core.flops`, which match ``FlopCounterMode``) times the steps of every cell, over a device's
throughput, plus a fixed per-step overhead (kernel launches and the Python loop).

An upper bound on purpose: every training step is priced as a full fine-tuning step at the padded
``max_len``, a scoring method (``selective``, ``rgn``, ``snr``, ``fibecfed``) pays one more such pass
over its batches, and every evaluation a forward pass over the test and validation rows.

Throughputs: ``cpu`` is measured here (SmolLM2-135M, full AdamW step, fp32, 1 thread, batch 16 × 32
tokens: 5.49 s for 3.3e11 FLOPs, about 60 GFLOP/s; MiniLM-L6's step: 57 GFLOP/s). ``h100`` is an
assumption until a GPU run measures it: 150 TFLOP/s effective in bf16 (15 % of the dense peak; a
135M-parameter model at batch 16 is far from saturating the card) and 30 ms per step of fixed cost.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from fl_core.config import GridConfig, RunConfig
from fl_core.dataset_names import dataset_task
from fl_core.flops import step_flops

SCORING = frozenset({"selective", "rgn", "snr", "fibecfed"})
#: rows per registered dataset (train+test before the split), for step counts without loading data
ROWS = {"bbc_news": 2225, "bbc_news_lm": 2225, "rotten_tomatoes": 12808}


@dataclass(frozen=True)
class Device:
    name: str
    flops_per_s: float
    step_overhead_s: float
    measured: bool


DEVICES = {
    "cpu": Device("this CPU, 1 thread, fp32 (measured)", 60e9, 0.0, True),
    "h100": Device("one H100, bf16 (assumed: 150 TFLOP/s effective, 30 ms per step)", 150e12, 0.03, False),
}


def cell_cost(cell: RunConfig) -> tuple[float, int]:
    """(FLOPs, optimizer steps + extra passes) of one cell, upper bound (module docstring)."""
    from fl_core.budget_model import _decoder_arch, arch_of
    from fl_core.model_specs import model_family

    fl, task = cell.fl, dataset_task(cell.dataset)
    if model_family(cell.model) == "decoder":
        arch = _decoder_arch(cell.model, 5, task)
    else:
        arch = arch_of(cell.model, 5)
    rows = cell.data.max_train_samples or int(ROWS.get(cell.dataset, 2000) * (1 - cell.data.test_fraction))
    per_client = math.ceil(rows / fl.num_clients / fl.batch_size) * fl.local_epochs
    steps = fl.local_steps and min(fl.local_steps, per_client) or per_client
    clients = 1 if cell.method.name == "centralized" else fl.clients_per_round
    n_steps = fl.rounds * clients * steps * (2 if cell.method.name in SCORING else 1)
    full = sum(step_flops(arch, fl.batch_size, fl.max_len, 0, [1.0] * arch.num_blocks))
    test = cell.data.max_test_samples or int(ROWS.get(cell.dataset, 2000) * cell.data.test_fraction)
    fwd = step_flops(arch, 1, fl.max_len, arch.num_blocks, [0.0] * arch.num_blocks)[0]
    evals = fl.rounds // fl.eval_every + 1
    return n_steps * full + evals * test * fwd, n_steps


def estimate(grid: GridConfig) -> list[str]:
    """Lines to print: cells, FLOPs and the time on each device."""
    cells = grid.cells()
    costs = [cell_cost(c) for c in cells]
    flops, steps = sum(f for f, _ in costs), sum(s for _, s in costs)
    out = [
        f"{grid.name}: {len(cells)} cells, {steps:,} training steps (and scoring passes), {flops:.3g} FLOPs"
    ]
    for d in DEVICES.values():
        s = flops / d.flops_per_s + steps * d.step_overhead_s
        out.append(f"  {d.name}: {s / 60:.1f} min ({s / 3600:.2f} h)")
    return out
