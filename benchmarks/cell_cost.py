"""Cost of one converged ``full`` cell before vs after the speed issue (13), side by side in one run.

The cell is a published reference-grid cell (``configs/reference_v1.yaml``: tuned lr, 20 rounds x 10
clients x 3 local steps = 600 client steps; its ``full`` has converged, see results/README.md), run
here one at a time in three ways, the order rotating each repeat so host drift hits all alike:

- ``before``: fp32 and the per-tensor AdamW loop (``fused=False, foreach=False``), as before issue 13;
- ``fp32``: fp32 and the fused AdamW of ``fl_core/optim.py``;
- ``bf16``: bf16 autocast and fused AdamW: the reference grid's setting.

Client FLOPs are the analytic count of the cell's training passes (the same in all three). Writes
results/perf/perf_cell_cost.csv and the ``cell_cost`` section of results/perf/README.md.

    python benchmarks/cell_cost.py --reps 2          # ~10 min on 2 cores for BBC News
"""

from __future__ import annotations

import argparse
import contextlib
import os
import time
from collections.abc import Iterable

import pandas as pd
import torch
from harness import cells_of, out_dir, patch_internals, publish, stamp, with_fl  # benchmarks/ on sys.path

import fl_core.trainer as trainer
from fl_core.config import RunConfig
from fl_core.optim import local_optimizer
from fl_core.simulator import run_cell
from fl_core.validate import load_grid

VARIANTS = ("before", "fp32", "bf16")


def loop_adamw(
    params: Iterable[torch.nn.Parameter],
    kind: str,
    lr: float,
    weight_decay: float = 0.0,
    momentum: float = 0.0,
) -> torch.optim.Optimizer:
    """The clients' AdamW as the per-tensor for-loop (the optimizer before issue 13), same update rule."""
    if kind != "adamw":
        return local_optimizer(params, kind, lr, weight_decay, momentum)
    return torch.optim.AdamW(list(params), lr=lr, weight_decay=weight_decay, fused=False, foreach=False)


def variant(cell: RunConfig, name: str) -> RunConfig:
    return with_fl(cell, precision="bf16" if name == "bf16" else "fp32")


def run_variant(cell: RunConfig, name: str) -> dict:
    t0 = time.perf_counter()
    # fl.optimizer has no unfused AdamW (nor should it): "before" swaps the trainer's optimizer factory
    swap = (
        patch_internals((trainer, "local_optimizer", loop_adamw))
        if name == "before"
        else contextlib.nullcontext()
    )
    with swap:
        res = run_cell(variant(cell, name), progress=False)
    train = [c for c in res.costs if c["kind"] == "train"]
    last = [r["accuracy"] for r in res.rounds if r.get("accuracy") is not None]
    return {
        "variant": name,
        "cell_s": round(time.perf_counter() - t0, 1),
        "client_train_s": round(sum(c["wall_s"] for c in train), 1),
        "client_tflops": round(sum(c["flops_fwd"] + c["flops_bwd"] for c in train) / 1e12, 2),
        "accuracy": round(last[-1], 4) if last else float("nan"),
        "status": res.status,
    }


def summarize(df: pd.DataFrame) -> pd.DataFrame:
    """Median per variant, with speedup = before's median cell seconds / this variant's."""
    med = df.groupby("variant", sort=False)[
        ["cell_s", "client_train_s", "client_tflops", "accuracy"]
    ].median()
    med = med.reindex([v for v in VARIANTS if v in med.index])
    med["speedup_vs_before"] = (med.cell_s["before"] / med.cell_s).round(2) if "before" in med.index else None
    med["reps"] = df.groupby("variant").size()
    return med.reset_index()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reference", default="configs/reference_v1.yaml")
    ap.add_argument("--dataset", default="bbc_news")
    ap.add_argument("--alpha", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument(
        "--threads", type=int, default=os.cpu_count() or 1, help="torch threads (default: all cores)"
    )
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    grid = load_grid(args.reference)
    match = cells_of(grid, "full", dataset=args.dataset, alpha=args.alpha, seed=args.seed)
    if not match:
        raise SystemExit(
            f"{args.reference} has no full cell at {args.dataset}, alpha {args.alpha}, seed {args.seed}"
        )
    cell, rows, t0 = match[0], [], time.perf_counter()
    for rep in range(args.reps):
        order = VARIANTS[rep % 3 :] + VARIANTS[: rep % 3]
        for name in order:
            rows.append({"rep": rep, **run_variant(cell, name)})
            print(rows[-1], flush=True)
    df = pd.DataFrame(rows)
    df.to_csv(out_dir() / "perf_cell_cost.csv", index=False)
    summary = summarize(df)
    fl = cell.fl
    publish(
        "cell_cost",
        f"`python benchmarks/cell_cost.py --reps {args.reps} --threads {args.threads}` (in `make perf`): "
        f"{os.cpu_count()} CPUs, torch {torch.__version__}, {args.threads} threads, one cell at a time; "
        f"{stamp()}",
        f"One converged `full` cell of `{args.reference}` ({args.dataset}, alpha {args.alpha}, seed "
        f"{args.seed}; lr {fl.lr:g}, {fl.rounds} rounds x {fl.clients_per_round} clients x "
        f"{fl.local_steps} steps, batch {fl.batch_size} x {fl.max_len} tokens, evaluated every "
        f"{fl.eval_every} rounds): before issue 13 (fp32, per-tensor AdamW loop), fp32 (fused AdamW) "
        "and bf16 (fused AdamW, the reference grid's setting); median of the repeats, the order rotated "
        "each repeat. Client TFLOPs: analytic, the same in all three.",
        summary.to_markdown(index=False),
        df.to_markdown(index=False),
        seconds=time.perf_counter() - t0,
    )
    print(summary.to_string(index=False))


if __name__ == "__main__":
    main()
