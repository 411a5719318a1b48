"""Analytic vs measured peak memory and step time of layer-suffix training and LoRA.

For t = 0..L (train the last t blocks + head) and LoRA ranks (default 4 and 8) on one model
(default MiniLM-L6, batch 16, seq 64), prints and writes ``results/perf/tiny_memory.{csv,md}``:
the analytic cost (:func:`fl_core.budget_model.step_cost`: weights, grads, optimizer state, stored
activations, FLOPs, upload) next to one real training step measured by
:func:`fl_core.budget_model.measure_step` (CPU: torch.profiler memory events; CUDA:
max_memory_allocated). A second table gives, per budget level, the deepest suffix and the
largest LoRA rank that fit (the inputs of the ``tiny`` and ``lora_budget`` methods).

    .venv/bin/python benchmarks/tiny_memory.py            # ~1 minute on 2 (shared) CPU cores
    .venv/bin/python benchmarks/tiny_memory.py --device cuda --out results/perf/tiny_memory_cuda
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pandas as pd  # noqa: E402
import torch  # noqa: E402
from harness import out_dir  # noqa: E402  benchmarks/ is the script's dir

from fl_core.budget_model import (  # noqa: E402
    RESOURCES,
    Budget,
    arch_of,
    full_cost,
    largest_rank,
    largest_suffix,
    measure_step,
    step_cost,
)

MB = 1e6


def measure_table(
    model: str,
    batch: int,
    seq: int,
    ranks: list[int],
    optimizer: str,
    device: str,
    repeats: int,
    num_labels: int,
) -> pd.DataFrame:
    arch = arch_of(model, num_labels)
    backend = "cuda" if device.startswith("cuda") else "cpu"
    full = full_cost(arch, batch, seq, optimizer=optimizer, backend=backend)
    configs = [{"t": t} for t in range(arch.num_blocks + 1)] + [{"r": r} for r in ranks]
    rows = []
    for cfg in configs:
        t0 = time.perf_counter()
        c = step_cost(arch, batch, seq, optimizer=optimizer, backend=backend, **cfg)
        m = measure_step(
            model,
            batch,
            seq,
            optimizer=optimizer,
            device=device,
            repeats=repeats,
            num_labels=num_labels,
            **cfg,
        )
        name = f"t={cfg['t']}" if "t" in cfg else f"LoRA r={cfg['r']}"
        rows.append(
            {
                "config": name,
                "trained_params": c.trained_params,
                "weights_MB": c.weights / MB,
                "grads_MB": c.grads / MB,
                "optimizer_MB": c.optimizer / MB,
                "activations_MB": c.activations / MB,
                "analytic_MB": c.memory / MB,
                "measured_MB": m.peak_bytes / MB,
                "measured/analytic": m.peak_bytes / c.memory,
                "memory_frac": c.memory / full.memory,
                "GFLOP": c.flops / 1e9,
                "flops_frac": c.flops / full.flops,
                "upload_MB": c.upload / MB,
                "upload_frac": c.upload / full.upload,
                "step_s": m.step_s,
            }
        )
        print(
            f"  {name:10s} analytic {c.memory / MB:8.1f} MB  measured {m.peak_bytes / MB:8.1f} MB  "
            f"step {m.step_s:6.3f} s  ({time.perf_counter() - t0:.1f} s)",
            flush=True,
        )
    return pd.DataFrame(rows)


def fit_table(
    models: list[str],
    reference: str,
    batch: int,
    seq: int,
    optimizer: str,
    num_labels: int,
    levels: list[float],
    ranks: list[int],
) -> pd.DataFrame:
    archs = {m: arch_of(m, num_labels) for m in models}
    full = full_cost(arch_of(reference, num_labels), batch, seq, optimizer=optimizer)
    rows = []
    for lvl in levels:
        for res in (RESOURCES, ("memory",), ("flops",), ("upload",)):
            b = Budget.fraction_of(full, lvl, res)
            row = {"budget": lvl, "constrain": "+".join(res)}
            for m, a in archs.items():
                t = largest_suffix(a, batch, seq, b, optimizer=optimizer)
                r = largest_rank(a, batch, seq, b, ranks, optimizer=optimizer)
                row[f"{m} t"] = "sits out" if t is None else t
                row[f"{m} LoRA r"] = "does not fit" if r is None else r
            rows.append(row)
    return pd.DataFrame(rows)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="minilm-l6")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--seq", type=int, default=64)
    ap.add_argument("--ranks", type=int, nargs="+", default=[4, 8])
    ap.add_argument("--optimizer", choices=["adamw", "sgd"], default="adamw")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--repeats", type=int, default=2, help="timed steps per configuration (median)")
    ap.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch intra-op threads (default 1: stable times on shared CPUs; 0 = torch's default)",
    )
    ap.add_argument("--num-labels", type=int, default=5)
    ap.add_argument("--out", help="output path without extension (default: results/perf/tiny_memory)")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    print(
        f"{args.model}, batch {args.batch}, seq {args.seq}, {args.optimizer}, {args.device}, "
        f"{torch.get_num_threads()} threads",
        flush=True,
    )
    meas = measure_table(
        args.model,
        args.batch,
        args.seq,
        args.ranks,
        args.optimizer,
        args.device,
        args.repeats,
        args.num_labels,
    )
    fits = fit_table(
        ["minilm-l2", "minilm-l4", "minilm-l6"],
        "minilm-l6",
        args.batch,
        args.seq,
        args.optimizer,
        args.num_labels,
        [0.125, 0.25, 0.5],
        [32, 16, 8, 4, 2, 1],
    )
    out = Path(args.out) if args.out else out_dir() / "tiny_memory"
    out.parent.mkdir(parents=True, exist_ok=True)
    meas.to_csv(out.with_suffix(".csv"), index=False)
    how = (
        "torch.cuda.max_memory_allocated"
        if args.device.startswith("cuda")
        else "torch.profiler CPU memory events"
    )
    md = [
        f"# Analytic vs measured training-step cost: {args.model}, batch {args.batch}, seq {args.seq}, "
        f"{args.optimizer}, {args.device}",
        "",
        "Analytic: `fl_core.budget_model.step_cost` (weights + grads + optimizer state + stored activations; "
        "frozen prefix under no_grad). Measured: one real step after a warm-up (`measure_step`, peak via "
        f"{how}); step time = median of {args.repeats} steps on {torch.get_num_threads()} threads "
        "(shared CPUs: times are indicative). Fractions are of full fine-tuning (t = L).",
        "",
        "The analytic figure sums every stored activation with every trained gradient (the paper's "
        "definition, used for the budgets). Backward frees a block's activations as it allocates its "
        "gradients, so for deep suffixes the measured peak is lower than the sum; head-only and LoRA steps "
        "hold short-lived forward/backward temporaries the sum leaves out, so theirs is higher.",
        "",
        meas.to_markdown(index=False, floatfmt=".3g"),
        "",
        f"## Deepest suffix t and largest LoRA rank that fit a budget (fractions of minilm-l6's full "
        f"fine-tuning cost at batch {args.batch}, seq {args.seq}; analytic)",
        "",
        fits.to_markdown(index=False),
        "",
    ]
    out.with_suffix(".md").write_text("\n".join(md))
    print()
    print(meas.to_string(index=False, float_format=lambda x: f"{x:.3g}"))
    print()
    print(fits.to_string(index=False))
    print(
        f"\nwrote {out.with_suffix('.csv')} and {out.with_suffix('.md')} in {time.perf_counter() - t0:.0f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
