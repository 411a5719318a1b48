"""Step speed of fl.precision fp32 vs bf16, side by side in one run (`make perf`).

1. peak: this machine's matmul peak per precision, 2048 x 2048 matmuls (fp32 vs bf16), interleaved.
2. steps: one training step (MiniLM-L6, batch 16 x 32 tokens, AdamW, the simulator's
   ``train_steps``) for full, top-2, head and LoRA-r8, fp32 and bf16 interleaved; achieved GFLOP/s
   from the analytic step FLOPs, as a fraction of the same run's peak in that precision.
   Both at 1 thread (one cell per core, the reference grid's Ray setting) and 2 threads (one cell).
3. where the time goes: the full step under ``torch.profiler`` per precision, split into matmuls,
   casts, dropout's random masks and the rest, and the step speed-up bf16 could reach if only the
   matmuls sped up by the measured peak ratio (Amdahl's law): why the step gains less than the peak.
4. compile: ``torch.compile`` (inductor) of every block, full fp32/bf16: compile seconds and step
   time, and whether it pays over the training steps of one converged cell (``--cell-steps``).

Writes results/perf/perf_precision.csv, perf_precision_breakdown.csv, perf_compile.csv and the
``precision`` section of results/perf/README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import time
from collections.abc import Iterator

import pandas as pd
import torch
from harness import out_dir, patch_internals, publish, run_config, stamp, with_fl  # benchmarks/ on sys.path

from fl_core.client import train_steps
from fl_core.flops import step_flops
from fl_core.methods import make_method
from fl_core.methods.base import TrainPlan
from fl_core.methods.lora import add_lora
from fl_core.simulator import build_context

N = 2048


def matmul_peak(reps: int, n: int = N, inner: int = 4) -> dict[str, float]:
    """GFLOP/s of ``inner`` n x n matmuls per precision, best of ``reps`` interleaved repeats."""
    mats = {
        p: [torch.randn(n, n, dtype=d) for _ in range(2)]
        for p, d in (("fp32", torch.float32), ("bf16", torch.bfloat16))
    }
    best = dict.fromkeys(mats, float("inf"))
    for _ in range(reps + 1):
        for p, (a, b) in mats.items():
            t0 = time.perf_counter()
            for _ in range(inner):
                a @ b
            best[p] = min(best[p], (time.perf_counter() - t0) / inner)
    return {p: 2 * n**3 / t / 1e9 for p, t in best.items()}


def _ctx(method: str):
    ctx = build_context(run_config(method))
    m = make_method(method, {}, ctx)
    if method == "lora":
        add_lora(ctx, r=8, alpha=16)
    return ctx, m


@contextlib.contextmanager
def _restored(ctx, plan: TrainPlan, precision: str) -> Iterator[list[str]]:
    """Set ``precision`` and yield the plan's trainable names; the model is restored afterwards."""
    # one context in both precisions (a second context would time a second model): its config swapped
    with patch_internals((ctx, "cfg", with_fl(ctx.cfg, precision=precision))):
        names = ctx.trainable_names(plan)
        snapshot = ctx.model.state(names)
        yield names
        ctx.model.load(snapshot)


def _batches(ctx, n: int) -> list:
    """The first ``n`` full batches (16 rows) of client 0."""
    return [b for b in ctx.client_batches(0, 0) if len(b) == 16][:n]


def step_time(ctx, method, plan: TrainPlan, batches, precision: str) -> float:
    """Seconds per step of ``train_steps`` on ``batches`` (the model is restored afterwards)."""
    with _restored(ctx, plan, precision) as names:
        t0 = time.perf_counter()
        train_steps(ctx, method, 0, plan, batches, names)
        return (time.perf_counter() - t0) / len(batches)


def bench_steps(reps: int, peak: dict[str, float], n_batches: int = 4) -> pd.DataFrame:
    full_ctx, full = _ctx("full")
    lora_ctx, lora = _ctx("lora")
    L = full_ctx.model.num_blocks
    batches = _batches(full_ctx, n_batches)
    seq = max(int(full_ctx.splits.train.lengths[b].max()) for b in batches)
    configs = {
        "full": (full_ctx, full, TrainPlan.of(range(L))),
        "top-2": (full_ctx, full, TrainPlan.of([L - 2, L - 1])),
        "head": (full_ctx, full, TrainPlan.of([])),
        "lora-r8": (lora_ctx, lora, TrainPlan.of(range(L), only="lora_")),
    }
    times: dict[tuple[str, str], list[float]] = {}
    for rep in range(reps + 1):  # rep 0 is a warm-up; configurations and precisions interleaved
        for name, (ctx, m, plan) in configs.items():
            for p in ("fp32", "bf16") if rep % 2 else ("bf16", "fp32"):
                dt = step_time(ctx, m, plan, batches, p)
                if rep:
                    times.setdefault((name, p), []).append(dt)
    rows = []
    for name, (ctx, _, plan) in configs.items():
        f, b = step_flops(
            ctx.model.arch, 16, seq, ctx.first_grad(plan), ctx.trained_share(ctx.trainable_names(plan))
        )
        t32, t16 = (statistics.median(times[name, p]) for p in ("fp32", "bf16"))
        row = {"config": name, "gflop_per_step": round((f + b) / 1e9, 1)}
        for p, t in (("fp32", t32), ("bf16", t16)):
            gf = (f + b) / t / 1e9
            row |= {
                f"{p}_step_s": round(t, 4),
                f"{p}_gflops": round(gf, 1),
                f"{p}_of_peak": round(gf / peak[p], 3),
            }
        rows.append({**row, "bf16_speedup": round(t32 / t16, 2)})
    return pd.DataFrame(rows)


MATMUL_OPS = {"aten::mm", "aten::addmm", "aten::bmm", "aten::baddbmm"}
COPY_OPS = {"aten::copy_", "aten::_to_copy"}  # autocast's casts are copies
CATEGORIES = ("matmul", "copy", "dropout_rng", "other")


def op_category(op: str) -> str:
    """Which part of the step a profiled ATen op's self time belongs to."""
    if op in MATMUL_OPS or op.startswith("aten::_scaled_dot_product"):
        return "matmul"
    if op in COPY_OPS:
        return "copy"
    return "dropout_rng" if op == "aten::bernoulli_" else "other"


def profiled_step(ctx, method, plan: TrainPlan, batches, precision: str) -> dict[str, float]:
    """Seconds per step in each ``op_category`` (profiler self time), the model restored afterwards."""
    from torch.profiler import ProfilerActivity, profile

    with _restored(ctx, plan, precision) as names, profile(activities=[ProfilerActivity.CPU]) as prof:
        train_steps(ctx, method, 0, plan, batches, names)
    out = dict.fromkeys(CATEGORIES, 0.0)
    for ev in prof.key_averages():
        out[op_category(ev.key)] += ev.self_cpu_time_total / 1e6 / len(batches)
    return out


def time_breakdown(threads: int, n_batches: int = 4) -> pd.DataFrame:
    """The full step's time by op category per precision, and the bf16 speed-up of the matmuls and of the step."""
    ctx, m = _ctx("full")
    plan = TrainPlan.of(range(ctx.model.num_blocks))
    batches = _batches(ctx, n_batches)
    parts = {}
    for p in ("fp32", "bf16", "fp32", "bf16"):  # the first of each is a warm-up
        step_time(ctx, m, plan, batches[:1], p)
        parts[p] = profiled_step(ctx, m, plan, batches, p)
    rows = [
        {"threads": threads, "precision": p, **{k: round(v, 4) for k, v in d.items()}}
        for p, d in parts.items()
    ]
    df = pd.DataFrame(rows)
    df["step_s"] = df[list(CATEGORIES)].sum(axis=1).round(4)
    f32, b16 = parts["fp32"], parts["bf16"]
    df["matmul_share"] = (df["matmul"] / df["step_s"]).round(2)
    df["matmul_speedup"] = [1.0, round(f32["matmul"] / b16["matmul"], 2)]
    df["step_speedup"] = [1.0, round(sum(f32.values()) / sum(b16.values()), 2)]
    return df


def bench_compile(reps: int, cell_steps: int, n_batches: int = 4) -> pd.DataFrame:
    """Eager vs inductor-compiled blocks for the full step; compile time is the first call's excess."""
    ctx, m = _ctx("full")
    L = ctx.model.num_blocks
    plan = TrainPlan.of(range(L))
    batches = _batches(ctx, n_batches)
    eager = {
        p: statistics.median(step_time(ctx, m, plan, batches, p) for _ in range(reps + 1))
        for p in ("fp32", "bf16")
    }
    for blk in ctx.model.blocks:
        blk.compile()
    rows = []
    for p in ("fp32", "bf16"):
        t0 = time.perf_counter()
        step_time(ctx, m, plan, batches[:1], p)  # compiles (training graph) for this precision
        first = time.perf_counter() - t0
        comp = statistics.median(step_time(ctx, m, plan, batches, p) for _ in range(reps))
        compile_s = first - comp
        saved = (eager[p] - comp) * cell_steps
        rows.append(
            {
                "precision": p,
                "eager_step_s": round(eager[p], 4),
                "compiled_step_s": round(comp, 4),
                "step_speedup": round(eager[p] / comp, 3),
                "compile_s": round(compile_s, 1),
                "cell_steps": cell_steps,
                "saved_over_cell_s": round(saved, 1),
                "pays": bool(saved > compile_s),
            }
        )
    return pd.DataFrame(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--cell-steps", type=int, default=600, help="training steps of one converged cell")
    ap.add_argument("--no-compile", action="store_true")
    ap.add_argument(
        "--threads", default="1,2", help="torch thread counts, comma-separated (1: a cell per core on Ray)"
    )
    args = ap.parse_args()
    threads = [int(t) for t in args.threads.split(",")]
    out = out_dir()
    t0 = time.perf_counter()
    load = os.getloadavg()[
        0
    ]  # other jobs on the cores make absolute times noisy (the ratios are interleaved)
    steps, peaks, parts = [], [], []
    for t in threads:
        torch.set_num_threads(t)
        peak = matmul_peak(args.reps)
        steps.append(bench_steps(args.reps, peak).assign(threads=t))
        peak_after = matmul_peak(args.reps)  # again after the steps: the spread shows the host's drift
        peaks.append(
            f"{t} thread(s): "
            + ", ".join(f"{p} {peak[p]:.0f} / {peak_after[p]:.0f} GFLOP/s" for p in peak)
            + f" (bf16/fp32 {peak['bf16'] / peak['fp32']:.2f}x)"
        )
        parts.append(time_breakdown(t))
    steps = pd.concat(steps, ignore_index=True)
    steps = steps[["threads", *steps.columns[:-1]]]
    parts = pd.concat(parts, ignore_index=True)
    steps.to_csv(out / "perf_precision.csv", index=False)
    parts.to_csv(out / "perf_precision_breakdown.csv", index=False)
    print(*peaks, steps.to_string(index=False), parts.to_string(index=False), sep="\n", flush=True)
    blocks = [
        f"`python benchmarks/precision_speed.py --reps {args.reps} --threads {args.threads}` (in `make perf`): "
        f"{os.cpu_count()} CPUs (1-min load average {load:.1f} at start; above the CPU count, other jobs "
        f"shared the cores), torch {torch.__version__}; {stamp()}",
        f"Matmul peak ({N}² matmuls, best of {args.reps}, before / after the steps): "
        + "; ".join(peaks)
        + ".",
        "One training step, MiniLM-L6, batch 16 x 32 tokens, AdamW (`train_steps`, median of "
        f"{args.reps} interleaved repeats of 4 steps); GFLOP/s from the analytic step FLOPs; `*_of_peak`: "
        "fraction of the matmul peak above in that precision and thread count:",
        steps.to_markdown(index=False),
        "Where the full step's time goes (`torch.profiler` self time per step, seconds; `matmul`: mm, addmm, "
        "bmm, attention; `copy`: copies, autocast's casts among them; `dropout_rng`: dropout's random masks; "
        "the profiler adds a little time per op). What bf16 does not speed up, the matmuls' shrinking share "
        "shows:",
        parts.to_markdown(index=False),
    ]
    if not args.no_compile:
        torch.set_num_threads(threads[0])
        comp = bench_compile(max(2, args.reps // 2), args.cell_steps).assign(threads=threads[0])
        comp.to_csv(out / "perf_compile.csv", index=False)
        print(comp.to_string(index=False), flush=True)
        blocks += [
            f"`torch.compile` (inductor, every block compiled in place), full step, {threads[0]} thread(s); "
            f"pays = the time saved over {args.cell_steps} training steps (one converged cell) exceeds the "
            "compile time:",
            comp.to_markdown(index=False),
        ]
    publish("precision", *blocks, seconds=time.perf_counter() - t0)


if __name__ == "__main__":
    main()
