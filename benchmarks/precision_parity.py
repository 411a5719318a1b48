"""Accuracy parity of fl.precision bf16 vs fp32 on short converging cells, and the cost of one
converged `full` cell in both precisions (seconds and client FLOPs), paired by seed, one run.

Each (method, seed) runs once in fp32 and once in bf16, back to back, so host drift hits both alike.
The paired difference bf16 - fp32 of the final accuracy is reported with its 95 % t interval.

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
from perf_readme import write_section  # benchmarks/ is the script's dir
from scipy import stats

from fl_core.config import DataConfig, FLConfig, MethodSpec, RunConfig
from fl_core.provenance import git_revision
from fl_core.simulator import run_cell

OUT = Path("results/perf")
TEST: dict = {"max_test_samples": None}
FL = dict(num_clients=10, clients_per_round=5, rounds=12, local_steps=5, lr=2e-4, max_len=32, eval_every=4)


def cell(method: str, seed: int, precision: str, dataset: str = "bbc_news", alpha: float = 1.0) -> RunConfig:
    return RunConfig(
        dataset=dataset,
        alpha=alpha,
        method=MethodSpec(name=method),
        seed=seed,
        model="minilm-l6",
        fl=FLConfig(**FL, precision=precision),
        data=DataConfig(**TEST),
    )


def run_one(c: RunConfig) -> dict:
    res = run_cell(c, progress=False)
    evals = [r for r in res.rounds if "accuracy" in r]
    train = [r for r in res.costs if r["kind"] == "train"]
    return {
        "method": c.method.name,
        "seed": c.seed,
        "precision": c.fl.precision,
        "status": res.status,
        "accuracy": evals[-1]["accuracy"],
        "accuracy_prev_eval": evals[-2]["accuracy"] if len(evals) > 1 else float("nan"),
        "macro_f1": evals[-1]["macro_f1"],
        "cell_s": round(res.info["wall_s"], 1),
        "client_train_s": round(sum(r["wall_s"] for r in train), 1),
        "client_tflops": round(sum(r["flops_fwd"] + r["flops_bwd"] for r in train) / 1e12, 2),
        "config_hash": c.hash(),
    }


def paired(df: pd.DataFrame, col: str) -> dict:
    """Mean of bf16 - fp32 over seeds with its 95 % t interval (nan half-width for one pair)."""
    w = df.pivot_table(index=["method", "seed"], columns="precision", values=col)
    d = (w["bf16"] - w["fp32"]).to_numpy()
    half = stats.t.ppf(0.975, len(d) - 1) * d.std(ddof=1) / np.sqrt(len(d)) if len(d) > 1 else float("nan")
    return {"pairs": len(d), "mean_diff": d.mean(), "ci95_lo": d.mean() - half, "ci95_hi": d.mean() + half}


def summarize(df: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    rows = [{"method": m, **paired(g, "accuracy")} for m, g in df.groupby("method")]
    rows.append({"method": "all", **paired(df, "accuracy")})
    cost = df.groupby(["method", "precision"])[
        ["accuracy", "cell_s", "client_train_s", "client_tflops"]
    ].mean()
    cost = cost.unstack("precision")
    speed = (cost["cell_s"]["fp32"] / cost["cell_s"]["bf16"]).rename("cell_speedup")
    return pd.DataFrame(rows).round(4), pd.concat([cost.round(3), speed.round(2)], axis=1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--methods", nargs="+", default=["full", "lora"])
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--threads", type=int, help="torch threads (1 on a shared, oversubscribed machine)")
    ap.add_argument("--rounds", type=int, default=FL["rounds"])
    ap.add_argument("--local-steps", type=int, default=FL["local_steps"])
    ap.add_argument("--lr", type=float, default=FL["lr"])
    ap.add_argument("--max-test", type=int, help="test rows (default: all 445)")
    args = ap.parse_args()
    FL.update(
        rounds=args.rounds, local_steps=args.local_steps, lr=args.lr, eval_every=max(1, args.rounds // 2)
    )
    TEST["max_test_samples"] = args.max_test
    if args.threads:
        torch.set_num_threads(args.threads)
    OUT.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    rows = []
    for seed in args.seeds:
        for m in args.methods:
            order = ("fp32", "bf16") if seed % 2 == 0 else ("bf16", "fp32")  # alternate who runs first
            for p in order:
                rows.append(run_one(cell(m, seed, p)))
                print(rows[-1], flush=True)
    df = pd.DataFrame(rows)
    df.to_csv(OUT / "perf_precision_parity.csv", index=False)
    diff, cost = summarize(df)
    cost.columns = [c if isinstance(c, str) else f"{c[0]}_{c[1]}" for c in cost.columns]
    write_section(
        OUT / "README.md",
        "parity",
        [
            f"## parity ({time.perf_counter() - t0:.0f} s)",
            "",
            f"`python benchmarks/precision_parity.py` (in `make perf`): {os.cpu_count()} CPUs (shared with "
            f"other jobs while measured), torch {torch.__version__}, {torch.get_num_threads()} threads; "
            f"git `{git_revision()}`; {time.strftime('%Y-%m-%d %H:%M')}",
            "",
            f"BBC News, alpha=1.0, MiniLM-L6, fl {FL} (batch 16, AdamW), data {TEST}; seeds {args.seeds}; each "
            "(method, seed) in fp32 and bf16 back to back. Final test accuracy, bf16 - fp32, paired by seed, "
            "95 % t interval:",
            "",
            diff.to_markdown(index=False),
            "",
            "Mean per precision: final accuracy, whole-cell seconds, client training seconds, client "
            "training TFLOPs (analytic); cell_speedup = fp32 / bf16 cell seconds:",
            "",
            cost.reset_index().to_markdown(index=False),
            "",
        ],
    )
    print(diff.to_string(index=False), cost.to_string(), sep="\n")


if __name__ == "__main__":
    main()
