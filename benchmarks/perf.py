"""Speed and memory of the simulator, as ratios measured side by side in one run (`make perf`).

1. overhead: one round of `full` on MiniLM-L6, 10 clients, vs a bare PyTorch loop doing the same
   forward/backward/optimizer steps on the same batches (no FL logic). Interleaved repeats, median.
2. frozen: step time training the top t blocks (t = 0..L) and LoRA, relative to all blocks, next to
   the analytic FLOP ratio of the cost model.
3. memory: resident memory after setup and peak during 2 rounds, at 10, 100 and 1000 clients (fixed
   total data), each in a fresh process; `top_k` (no client state) at 10/100/1000 and `fibecfed`
   (personal LoRA + neuron masks per client, reported per client and for all N) at 10/100.

Writes results/perf/perf_{overhead,frozen,memory}.csv and results/perf/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from harness import out_dir, publish, run_config, torch_run  # benchmarks/ is the script's dir

from fl_core.client import local_batches, train_steps
from fl_core.flops import step_flops
from fl_core.methods import make_method
from fl_core.methods.base import TrainPlan
from fl_core.simulator import build_context, run_round


def bench_overhead(reps: int) -> pd.DataFrame:
    ctx = build_context(run_config(local_steps=2))
    method = make_method("full", {}, ctx)
    clients = list(range(10))
    batches = {c: local_batches(ctx, method, 0, c) for c in clients}
    names = ctx.trainable_names(method.configure_train(0, [0])[0])
    hf = ctx.model.hf

    def bare_logits(ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """HF's encoder called directly, then the model's own head (MiniLM-L6 pools by token mean)."""
        return ctx.model.run_head(hf.bert(input_ids=ids, attention_mask=mask).last_hidden_state, mask)

    def simulator_round() -> None:
        run_round(ctx, method, 0, clients, [])

    def bare_round() -> None:
        ctx.model.set_trainable(set(names))
        params = [ctx.model.params[n] for n in names]
        hf.train()
        for c in clients:
            opt = torch.optim.AdamW(params, lr=ctx.cfg.fl.lr)
            for idx in batches[c]:
                ids, mask, y = ctx.tensors(idx)
                loss = F.cross_entropy(bare_logits(ids, mask), y)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(params, 1.0)
                opt.step()
        ctx.model.set_trainable(set())

    times: dict[str, list[float]] = {"simulator": [], "bare": []}
    simulator_round(), bare_round()  # warm-up
    for _ in range(reps):
        for name, fn in (("simulator", simulator_round), ("bare", bare_round)):
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    sim, bare = statistics.median(times["simulator"]), statistics.median(times["bare"])
    steps = sum(len(b) for b in batches.values())
    return pd.DataFrame(
        [
            {
                "benchmark": "one round of full, 10 clients",
                "optimizer_steps": steps,
                "simulator_s": round(sim, 3),
                "bare_pytorch_s": round(bare, 3),
                "ratio": round(sim / bare, 3),
                "target": "<= 1.05",
                "reps": reps,
            }
        ]
    )


def _step_time(ctx, method, plan: TrainPlan, batches: list[np.ndarray], reps: int) -> float:
    names = ctx.trainable_names(plan)
    snapshot = ctx.model.state(names)
    train_steps(ctx, method, 0, plan, batches[:1], names)  # warm-up
    out = []
    for _ in range(reps):
        t0 = time.perf_counter()
        train_steps(ctx, method, 0, plan, batches, names)
        out.append((time.perf_counter() - t0) / len(batches))
    ctx.model.load(snapshot)
    return statistics.median(out)


def bench_frozen(reps: int, n_batches: int = 4) -> pd.DataFrame:
    ctx = build_context(run_config(local_steps=2))
    method = make_method("full", {}, ctx)
    L = ctx.model.num_blocks
    batches = ctx.client_batches(0, 0)[:n_batches]
    seq = int(max(ctx.splits.train.lengths[b].max() for b in batches))

    def analytic(plan: TrainPlan) -> float:
        f, b = step_flops(
            ctx.model.arch, 16, seq, ctx.first_grad(plan), ctx.trained_share(ctx.trainable_names(plan))
        )
        return f + b

    plans = {f"top-{t}": TrainPlan.of(range(L - t, L)) for t in range(L + 1)}
    measured = {}
    for _ in range(reps):  # interleave configurations so drift hits all of them alike
        for name, plan in plans.items():
            measured.setdefault(name, []).append(_step_time(ctx, method, plan, batches, 1))
    full_t, full_f = statistics.median(measured[f"top-{L}"]), analytic(plans[f"top-{L}"])
    rows = [
        {
            "config": n,
            "step_s": round(statistics.median(v), 4),
            "measured_ratio": statistics.median(v) / full_t,
            "analytic_ratio": analytic(plans[n]) / full_f,
        }
        for n, v in measured.items()
    ]
    from fl_core.methods.lora import add_lora

    lctx = build_context(run_config("lora", local_steps=2))
    lora = make_method("lora", {}, lctx)
    add_lora(lctx, r=8, alpha=16)
    plan = TrainPlan.of(range(L), only="lora_")
    lt = statistics.median([_step_time(lctx, lora, plan, batches, 1) for _ in range(reps)])
    f, b = step_flops(lctx.model.arch, 16, seq, 0, lctx.trained_share(lctx.trainable_names(plan)))
    rows.append(
        {
            "config": "lora-r8",
            "step_s": round(lt, 4),
            "measured_ratio": lt / full_t,
            "analytic_ratio": (f + b) / full_f,
        }
    )
    df = pd.DataFrame(rows)
    df["measured/analytic"] = (df.measured_ratio / df.analytic_ratio).round(3)
    df[["measured_ratio", "analytic_ratio"]] = df[["measured_ratio", "analytic_ratio"]].round(3)
    return df


def _status_mb(field: str) -> float:
    """VmRSS / VmHWM of this process from /proc, in MB (Linux)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise KeyError(field)


def _memory_child(clients: int, method_name: str) -> None:
    """Runs in a fresh process: resident memory after setup, then the peak during 2 rounds of 10
    clients. The high-water mark is reset after setup (``/proc/self/clear_refs``), so the peak is
    that of the rounds, not of the model load."""
    params = {"k": 1} if method_name == "top_k" else {}
    ctx = build_context(run_config(method_name, params=params, num_clients=clients, local_steps=1, rounds=2))
    method = make_method(method_name, params, ctx)
    method.setup()
    sched = [sorted(ctx.rng("schedule").choice(clients, 10, replace=False).tolist()) for _ in range(2)]
    base = _status_mb("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current RSS
    for r in range(2):
        run_round(ctx, method, r, sched[r], [])
    peak = _status_mb("VmHWM")
    per_client = 0.0  # bytes one client keeps between rounds: its PL LoRA (once it trained) + masks
    for store in (getattr(method, "personal", {}), getattr(method, "masks", {})):
        if store:
            per_client += sum(v.numel() * v.element_size() for s in store.values() for v in s.values()) / len(
                store
            )
    print(
        json.dumps(
            {
                "method": method_name,
                "clients": clients,
                "rss_after_setup_MB": base,
                "peak_rss_rounds_MB": peak,
                "rounds_over_setup_MB": peak - base,
                "personal_state_per_client_KB": per_client / 1024,
                "personal_state_all_clients_MB": per_client * clients / 2**20,
            }
        )
    )


def bench_memory(sizes: list[int]) -> pd.DataFrame:
    rows = []
    # fibecfed's setup runs a Fisher pass and trial epochs on every client: minutes at 1000 clients
    for m, ns in (("top_k", sizes), ("fibecfed", [n for n in sizes if n <= 100])):
        for n in ns:
            out = subprocess.run(
                [sys.executable, __file__, "--memory-child", str(n), m],
                capture_output=True,
                text=True,
                check=True,
                env={**os.environ, "PYTHONWARNINGS": "ignore"},
            )
            rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    df = pd.DataFrame(rows)
    first = df.groupby("method").peak_rss_rounds_MB.transform("first")
    df["peak_growth_vs_10"] = (df.peak_rss_rounds_MB / first - 1).round(3)
    return df.round(1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument(
        "--reps", type=int, default=7, help="interleaved repeats (3 left a 7 %% spread in overhead)"
    )
    ap.add_argument("--only", choices=["overhead", "frozen", "memory"])
    ap.add_argument("--memory-child", nargs=2, metavar=("CLIENTS", "METHOD"))
    args = ap.parse_args()
    if args.memory_child:
        return _memory_child(int(args.memory_child[0]), args.memory_child[1])
    out = out_dir()
    command = " ".join(["python benchmarks/perf.py", *sys.argv[1:]])
    run = torch_run()
    for name, fn in [
        ("overhead", lambda: bench_overhead(args.reps)),
        ("frozen", lambda: bench_frozen(args.reps)),
        ("memory", lambda: bench_memory([10, 100, 1000])),
    ]:
        if args.only and args.only != name:
            continue
        t0 = time.perf_counter()
        df = fn()
        df.to_csv(out / f"perf_{name}.csv", index=False)
        publish(
            name,
            f"`{command}` (in `make perf`): {run}",
            df.to_markdown(index=False),
            seconds=time.perf_counter() - t0,
        )
        print(df.to_string(index=False), flush=True)


if __name__ == "__main__":
    main()
