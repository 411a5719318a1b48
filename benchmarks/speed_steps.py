"""Each speed step of the simulator, before vs after, timed side by side in one run (`make perf`).

"before" is the same work done the plain way; the two are interleaved ``reps`` times and the
median of each is kept, so host drift hits both alike. speed-up = before_s / after_s.

1. tokenize: Rotten Tomatoes (10,662 rows, 64 tokens) tokenized from the packaged source vs
   loaded from the on-disk cache.
2. length_buckets: one round of `full`, 10 clients on Rotten Tomatoes, batches cut from a plain
   shuffle vs from length buckets (dynamic padding to each batch's longest row in both).
3. frozen_prefix: training the top 2 blocks by masking: backward through every block, only the
   chosen ones stepped, vs the frozen prefix under no_grad in eval mode.
4. no_model_copies: one round of top-2 with 10 clients, each client on a deep copy of the global
   model (as per-client simulators do) vs everyone on the one shared model.
5. prefix_cache: whole cells of `head` and `top-2` as in the default grid (rows read < 1 time: the
   cache stays empty) and as in the reference grid (rows read ~2.7 times), cache off vs on.
   prefix_first_round: round 0 of the `head` cell, the cache filling every split vs only splits
   whose rows are read more than once over the run (fl_core/visits.py).
6. eval_no_grad / eval_length_sorted: the Rotten Tomatoes test split scored with autograd on vs
   off, and in random vs length-sorted batches.
7. threads: 4 default-grid cells run one after another with 2 torch threads vs 2 at a time in
   worker processes with 1 thread each (what ``--backend ray`` does on 2 cores).

Writes results/perf/perf_steps.csv and its section of results/perf/README.md.
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from harness import (  # benchmarks/ is the script's dir
    cells_of,
    out_dir,
    patch_internals,
    publish,
    run_config,
    torch_run,
    with_fl,
)

from fl_core.client import local_batches, make_optimizer, run_client, train_steps
from fl_core.config import RunConfig
from fl_core.context import PrefixCache
from fl_core.data.splits import load_splits
from fl_core.evaluate import predict_rows
from fl_core.methods import make_method
from fl_core.methods.base import TrainPlan
from fl_core.models import load_tokenizer
from fl_core.provenance import git_revision
from fl_core.simulator import build_context, participation_schedule, run_cell, run_round

REPO = Path(__file__).resolve().parents[1]
DEFAULT_FL = dict(
    num_clients=10, clients_per_round=3, rounds=6, local_steps=3, batch_size=16, max_len=32, eval_every=3
)


def _cell(method: str = "full", dataset: str = "bbc_news", fl: dict | None = None, **params) -> RunConfig:
    """The harness's cell at alpha 1.0, 2 local steps, on 1,000 training rows (BBC News: 250 test rows)."""
    data = {"max_train_samples": 1000, "max_test_samples": 250 if dataset == "bbc_news" else 1000}
    return run_config(
        method, dataset=dataset, alpha=1.0, params=params, data=data, **{"local_steps": 2, **(fl or {})}
    )


def _interleave(fns: dict[str, Callable[[], object]], reps: int) -> dict[str, float]:
    """Median wall time of each function, run in turn ``reps`` times after one warm-up each."""
    for fn in fns.values():
        fn()
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(reps):
        for k, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[k].append(time.perf_counter() - t0)
    return {k: statistics.median(v) for k, v in times.items()}


def _row(step: str, work: str, t: dict[str, float], reps: int, note: str = "") -> dict:
    return {
        "step": step,
        "work": work,
        "before_s": round(t["before"], 3),
        "after_s": round(t["after"], 3),
        "speedup": round(t["before"] / t["after"], 2),
        "reps": reps,
        "note": note,
    }


def step_tokenize(reps: int) -> dict:
    tok = load_tokenizer("minilm-l6")
    warm = Path(tempfile.mkdtemp())

    def cold() -> None:
        with tempfile.TemporaryDirectory() as d:
            os.environ["LAYERBENCH_CACHE"] = d
            load_splits("rotten_tomatoes", tok, 64)

    def cached() -> None:
        os.environ["LAYERBENCH_CACHE"] = str(warm)
        load_splits("rotten_tomatoes", tok, 64)

    old = os.environ.get("LAYERBENCH_CACHE")
    try:
        t = _interleave({"before": cold, "after": cached}, reps)
    finally:
        if old is None:
            os.environ.pop("LAYERBENCH_CACHE", None)
        else:
            os.environ["LAYERBENCH_CACHE"] = old
    return _row("tokenize", "Rotten Tomatoes, 10,662 rows, 64 tokens: tokenize vs load cache", t, reps)


def _round(ctx, method, clients: list[int]) -> Callable[[], None]:
    snapshot = ctx.model.state(sorted(ctx.model.params))
    return lambda: (run_round(ctx, method, 0, clients, []), ctx.model.load(snapshot))


def step_length_buckets(reps: int) -> dict:
    fns, pad = {}, {}
    for name, k in (("before", 0), ("after", 8)):
        ctx = build_context(_cell(dataset="rotten_tomatoes", fl={"max_len": 64, "length_buckets": k}))
        method = make_method("full", {}, ctx)
        fns[name] = _round(ctx, method, list(range(10)))
        lengths = ctx.splits.train.lengths
        batches = [b for c in range(10) for b in local_batches(ctx, method, 0, c)]
        pad[name] = sum(len(b) * int(lengths[b].max()) for b in batches) / sum(
            int(lengths[b].sum()) for b in batches
        )
    t = _interleave(fns, reps)
    return _row(
        "length_buckets",
        "1 round of full, 10 clients x 2 steps, Rotten Tomatoes (64 tokens)",
        t,
        reps,
        f"padded/real tokens {pad['before']:.2f} -> {pad['after']:.2f}",
    )


def step_frozen_prefix(reps: int) -> dict:
    ctx = build_context(_cell())
    method = make_method("full", {}, ctx)
    L = ctx.model.num_blocks
    plan = TrainPlan.of([L - 2, L - 1])
    names = ctx.trainable_names(plan)
    every = ctx.trainable_names(TrainPlan.of(range(L)))
    batches = ctx.client_batches(0, 0)[:4]
    snapshot = ctx.model.state(every)

    def masked() -> None:  # autograd through every block; only the chosen blocks are stepped
        model = ctx.model
        model.set_trainable(set(every))
        opt = make_optimizer([model.params[n] for n in names], ctx)
        model.hf.train()
        for idx in batches:
            ids, mask, y = ctx.tensors(idx)
            loss = F.cross_entropy(model.forward(ids, mask, 0), y)
            opt.zero_grad(set_to_none=True)
            model.hf.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        model.set_trainable(set())
        model.load(snapshot)

    def ours() -> None:
        train_steps(ctx, method, 0, plan, batches, names)
        ctx.model.load(snapshot)

    t = _interleave({"before": masked, "after": ours}, reps)
    return _row(
        "frozen_prefix",
        "top-2 of MiniLM-L6, 4 steps x 16 x 32 tokens: grad masking vs no_grad prefix",
        t,
        reps,
    )


def step_no_model_copies(reps: int) -> dict:
    ctx = build_context(_cell("top_k", k=2))
    method = make_method("top_k", {"k": 2}, ctx)
    clients = list(range(10))

    def copies() -> None:  # each client trains its own deep copy of the global model
        plans = method.configure_train(0, clients)
        ctx.global_values = ctx.model.state(ctx.trainable_names(plans[0]))
        updates = []
        for cid in clients:
            # the "before" of one shared model: the context holds a client's own copy while it trains
            with patch_internals((ctx, "model", copy.deepcopy(ctx.model))):
                updates.append(run_client(ctx, method, 0, cid, plans[cid]))
        method.aggregate(0, updates)

    t = _interleave({"before": copies, "after": _round(ctx, method, clients)}, reps)
    return _row(
        "no_model_copies",
        "1 round of top-2, 10 clients x 2 steps: deep copy per client vs shared model",
        t,
        reps,
    )


def step_prefix_cache(reps: int, method: str, **params) -> dict:
    cells = {
        name: _cell(method, fl={**DEFAULT_FL, "prefix_cache": on}, **params)
        for name, on in (("before", False), ("after", True))
    }
    t = _interleave({k: (lambda c=c: run_cell(c, progress=False)) for k, c in cells.items()}, reps)
    label = method if not params else f"{method} {params}"
    return _row(
        "prefix_cache", f"whole default-grid cell of {label} (6 rounds, 2 evaluations), BBC News", t, reps
    )


def step_prefix_cache_reference(reps: int, label: str) -> dict:
    """A whole reference-grid cell (BBC News, alpha 1.0, seed 0: 20 rounds x 10 clients x 3 steps, so
    each training row is read ~2.7 times), cache off vs on."""
    from fl_core.validate import load_grid

    ref = load_grid(REPO / "configs" / "reference_v1.yaml", {"tuned": None})
    cell = cells_of(ref, label, dataset="bbc_news", alpha=1.0)[0]
    cells = {
        name: with_fl(cell, prefix_cache=on).model_copy(update={"seed": 0})
        for name, on in (("before", False), ("after", True))
    }
    t = _interleave({k: (lambda c=c: run_cell(c, progress=False)) for k, c in cells.items()}, reps)
    return _row("prefix_cache", f"whole reference-grid cell of {label} (20 rounds, 11 evaluations)", t, reps)


def step_prefix_first_round(reps: int) -> dict:
    """Round 0 of a default-grid `head` cell (0.86 expected reads per train row): the cache filled
    for every split (before, MIN_VISITS 0) vs only for splits read more than once (after)."""
    ctx = build_context(_cell("head", fl={**DEFAULT_FL, "prefix_cache": True}))
    method = make_method("head", {}, ctx)
    clients = participation_schedule(ctx)[0]
    snapshot = ctx.model.state(sorted(ctx.model.params))

    def first_round(min_visits: float) -> Callable[[], None]:
        def fn() -> None:
            ctx.enable_prefix_cache(method.never_trained_below())  # a fresh, empty cache
            # the visit threshold is a class constant: this one cache gets the "before" value
            with patch_internals((ctx.prefix_cache, "MIN_VISITS", min_visits)):
                run_round(ctx, method, 0, clients, [])
            ctx.model.load(snapshot)

        return fn

    t = _interleave({"before": first_round(0.0), "after": first_round(PrefixCache.MIN_VISITS)}, reps)
    return _row(
        "prefix_first_round", "round 0 of a default-grid head cell: cache every split vs read > 1", t, reps
    )


def step_eval(reps: int) -> list[dict]:
    ctx = build_context(_cell(dataset="rotten_tomatoes", fl={"max_len": 64, "eval_batch_size": 64}))
    model, data = ctx.model, ctx.splits.test
    every = set(ctx.trainable_names(TrainPlan.of(range(model.num_blocks))))

    def scored(order: np.ndarray, grad: bool) -> None:
        model.set_trainable(every if grad else set())
        model.hf.eval()
        with torch.set_grad_enabled(grad):
            for s in range(0, len(order), 64):
                logits, y = ctx.logits(order[s : s + 64], "test", 0 if grad else model.num_blocks)
                F.cross_entropy(logits, y, reduction="none").detach()
        model.set_trainable(set())

    rand = np.random.default_rng(0).permutation(len(data))
    srt = np.argsort(data.lengths, kind="stable")
    work = f"Rotten Tomatoes test split ({len(data)} rows, 64 tokens), batches of 64"
    t1 = _interleave({"before": lambda: scored(srt, True), "after": lambda: scored(srt, False)}, reps)
    t2 = _interleave(
        {"before": lambda: scored(rand, False), "after": lambda: predict_rows(ctx, "test")}, reps
    )
    return [
        _row("eval_no_grad", work + ", length-sorted", t1, reps),
        _row("eval_length_sorted", work + ", no_grad", t2, reps),
    ]


def _cell_in_worker(cell: RunConfig, threads: int) -> float:
    torch.set_num_threads(threads)
    t0 = time.perf_counter()
    run_cell(cell, progress=False)
    return time.perf_counter() - t0


def step_threads(reps: int) -> dict:
    specs = [("head", {}), ("top_k", {"k": 2}), ("full", {}), ("lora", {})]
    cells = [_cell(m, fl={**DEFAULT_FL, "prefix_cache": True}, **p) for m, p in specs]
    with ProcessPoolExecutor(2, mp_context=torch.multiprocessing.get_context("spawn")) as pool:
        pool.submit(_cell_in_worker, cells[0], 1).result()  # warm both workers' imports
        pool.submit(_cell_in_worker, cells[0], 1).result()

        def one_by_one() -> None:
            for c in cells:
                _cell_in_worker(c, 2)

        def two_at_once() -> None:
            list(pool.map(_cell_in_worker, cells, [1] * len(cells)))

        threads = torch.get_num_threads()
        t = _interleave({"before": one_by_one, "after": two_at_once}, reps)
        torch.set_num_threads(threads)
    return _row(
        "threads",
        "4 default-grid cells (head, top-2, full, lora): 1 process x 2 threads (before) vs "
        "2 processes x 1 thread (after)",
        t,
        reps,
    )


STEPS: dict[str, Callable[[int], list[dict]]] = {
    "tokenize": lambda r: [step_tokenize(r)],
    "length_buckets": lambda r: [step_length_buckets(r)],
    "frozen_prefix": lambda r: [step_frozen_prefix(r)],
    "no_model_copies": lambda r: [step_no_model_copies(r)],
    "prefix_cache": lambda r: [
        step_prefix_cache(r, "head"),
        step_prefix_cache(r, "top_k", k=2),
        step_prefix_cache_reference(max(1, r - 1), "head"),
        step_prefix_cache_reference(max(1, r - 1), "top-2"),
    ],
    "prefix_first_round": lambda r: [step_prefix_first_round(r)],
    "eval": step_eval,
    "threads": lambda r: [step_threads(max(1, r - 1))],
}


def merge_rows(new: pd.DataFrame, only: list[str] | None, previous: Path) -> pd.DataFrame:
    """``--only``: the rerun steps replace their rows of the previous table, the other rows are kept (each
    row's ``measured`` says when and at which revision it was timed); a full run writes just its own rows."""
    if not only or not previous.is_file():
        return new
    old = pd.read_csv(previous, keep_default_na=False)
    if "measured" not in old:
        old["measured"] = "earlier run"
    order = {name: i for i, name in enumerate(STEPS)}
    key = lambda step: order.get(step, order.get(step.split("_")[0], len(order)))  # noqa: E731  eval_*: eval
    old = old[[key(step) not in {order[n] for n in only} for step in old.step]]
    merged = pd.concat([old, new], ignore_index=True)
    return merged.sort_values("step", key=lambda col: col.map(key), kind="stable").reset_index(drop=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--only", nargs="*", choices=list(STEPS))
    args = ap.parse_args()
    out = out_dir()
    t0 = time.perf_counter()
    rows = []
    for name, fn in STEPS.items():
        if args.only and name not in args.only:
            continue
        rows += fn(args.reps)
        print(pd.DataFrame(rows[-1:]).to_string(index=False), flush=True)
    stamp = f"{time.strftime('%Y-%m-%d')} {git_revision()[:8]}"
    df = merge_rows(pd.DataFrame(rows).assign(measured=stamp), args.only, out / "perf_steps.csv")
    df.to_csv(out / "perf_steps.csv", index=False)
    only = f" --only {' '.join(args.only)}" if args.only else ""
    run = (
        f"`python benchmarks/speed_steps.py --reps {args.reps}{only}` (in `make perf` without `--only`): "
        f"{torch_run()}" + ("; the other rows are kept from the runs their `measured` names" if only else "")
    )
    publish(
        "steps",
        run,
        "Each speed step, before vs after, interleaved in one run (median of `reps`); speedup = before_s / after_s.",
        df.to_markdown(index=False),
        seconds=time.perf_counter() - t0,
    )


if __name__ == "__main__":
    main()
