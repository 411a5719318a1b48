"""The round loop: one shared global model, a pre-sampled participation schedule, method hooks.

Backend-free and callback-free on purpose (cf. pfl-research's ``FederatedAlgorithm``): it runs one
cell and returns its result; where results go (store, W&B) is the caller's business.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from pydantic import BaseModel

from fl_core.checkpoint import Checkpoint
from fl_core.client import run_client
from fl_core.config import RunConfig, cell_name, natural_key
from fl_core.context import RunContext
from fl_core.data import client_test_split, label_counts, load_splits, natural_client_test, partition
from fl_core.data.val import carve_val
from fl_core.dataset_names import dataset_task
from fl_core.diagnostics import Scope, column, undeclared
from fl_core.evaluate import evaluate_global
from fl_core.methods import METHODS, Method, make_method, validate_params
from fl_core.metrics import ACCURACY
from fl_core.models import HEAD, build_model, load_tokenizer, model_label, num_blocks
from fl_core.plan import ClientUpdate
from fl_core.precision import resolve_precision

log = logging.getLogger(__name__)


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


@dataclass
class CellResult:
    status: str  # "ok" | "diverged"
    rounds: list[dict[str, Any]]
    costs: list[dict[str, Any]]
    selections: list[dict[str, Any]]
    partition: dict[str, Any]
    info: dict[str, Any] = field(default_factory=dict)


def participation_schedule(ctx: RunContext) -> list[list[int]]:
    fl = ctx.cfg.fl
    rng = ctx.rng("schedule")
    return [
        sorted(rng.choice(fl.num_clients, fl.clients_per_round, replace=False).tolist())
        for _ in range(fl.rounds)
    ]


def build_context(cfg: RunConfig, params: BaseModel | None = None) -> RunContext:
    """Data, partition and model of a cell; ``params``: the method's validated params (else validated here)."""
    tok = load_tokenizer(cfg.model)
    source = natural_key(cfg.alpha)
    splits = load_splits(
        cfg.dataset, tok, cfg.fl.max_len, cfg.data.test_fraction, cfg.data.split_seed, group_by=source
    )
    if cfg.data.max_train_samples and cfg.data.max_train_samples < len(splits.train):
        keep = np.random.default_rng(cfg.data.split_seed).permutation(len(splits.train))[
            : cfg.data.max_train_samples
        ]
        splits = type(splits)(
            splits.train.subset(np.sort(keep)), splits.test, splits.label_names, splits.split_hash
        )
    splits = carve_val(splits, cfg.data.val_fraction, cfg.data.split_seed, cfg.data.evaluate_on)
    cfg = METHODS[cfg.method.name].adjust_cell(cfg, len(splits.train))  # e.g. centralized: one client
    if cfg.data.max_test_samples and cfg.data.max_test_samples < len(splits.test):
        keep = np.random.default_rng(cfg.data.split_seed + 1).permutation(len(splits.test))[
            : cfg.data.max_test_samples
        ]
        splits = type(splits)(
            splits.train, splits.test.subset(np.sort(keep)), splits.label_names, splits.split_hash, splits.val
        )
    clients = partition(
        splits.train.labels,
        cfg.fl.num_clients,
        cfg.alpha,
        cfg.seed,
        cfg.data.min_partition_size,
        groups=splits.train.groups,
    )
    device = resolve_device(cfg.fl.device)
    if params is None:
        params = validate_params(cfg.method.name, cfg.method.params, num_blocks(cfg.model))
    chosen = METHODS[cfg.method.name].select_model(params, cfg, splits.num_labels)
    if chosen != cfg.model:  # the method picked the architecture (e.g. budget-aware schedules)
        cfg = cfg.model_copy(update={"model": chosen})
    task = dataset_task(cfg.dataset)  # "lm": next-token fine-tuning, the labels steer the partition
    model = build_model(cfg.model, splits.num_labels, seed=cfg.seed, task=task).to(device)
    ctx = RunContext(cfg=cfg, model=model, splits=splits, clients=clients, device=device)
    ctx.precision, ctx.precision_reason = resolve_precision(cfg.fl.precision, device)
    ctx.touched.update(model.names_in(HEAD))  # the new head must reach every client once
    # each client's own test split: its sources' held-out rows (natural), else drawn with its training
    # label mix (personalized evaluation)
    counts = label_counts(splits.train.labels, clients, splits.num_labels)
    if source:
        ctx.client_test = natural_client_test(splits.train.groups, splits.test.groups, clients)
    else:
        ctx.client_test = client_test_split(
            splits.test.labels, counts, int(ctx.rng("client-test").integers(2**31))
        )
    return ctx


def run_round(
    ctx: RunContext, method: Method, rnd: int, clients: list[int], selections: list[dict[str, Any]]
) -> tuple[list[ClientUpdate], dict[str, torch.Tensor]]:
    """One round on the shared model: plans, each client in turn, aggregation applied to the model."""
    model = ctx.model
    plans = method.configure_train(rnd, clients)
    union = sorted({n for c in clients for n in ctx.trainable_names(plans[c])})
    ctx.global_values = model.state(union)
    updates = []
    for cid in clients:
        if plans[cid].info.get("sit_out"):  # fits no budget: no training, no upload, no cost
            selections.append({"round": rnd, "client": cid, "blocks": [], "head": False, "sit_out": True})
            continue
        updates.append(run_client(ctx, method, rnd, cid, plans[cid]))
        model.load(ctx.global_values)  # back to the global model for the next client
        selections.append(
            {
                "round": rnd,
                "client": cid,
                "blocks": sorted(plans[cid].blocks),
                "head": plans[cid].head,
                **diagnostic_columns("client", plans[cid].info, method),
            }
        )
    new = method.aggregate(rnd, updates)
    model.load(new)
    ctx.touched.update(new)
    return updates, new


def diagnostic_columns(scope: Scope, info: dict[str, Any], method: Method) -> dict[str, Any]:
    """``info``'s diagnostics as store columns (:mod:`fl_core.diagnostics`); an undeclared key is an error."""
    if missing := undeclared(scope, info):
        raise ValueError(
            f"method {method.name!r} records undeclared {scope} diagnostic(s) {missing}: declare them with "
            "fl_core.diagnostics.declare(Diagnostic(key, scope, meaning)) where the method is defined"
        )
    return {column(scope, k): v for k, v in info.items()}


def _evaluate(ctx: RunContext, method: Method, row: dict[str, Any]) -> None:
    """accuracy/macro_f1/loss: global model, global test set; personal_*: the clients' own test
    splits pooled, with each client's personal state if the method keeps one, else the global model."""
    overall, on_clients = evaluate_global(ctx)
    row.update(overall)
    pers = method.personalized_eval()
    if pers is None:
        pers = on_clients
    if pers:
        row.update({f"personal_{k}": v for k, v in pers.items()})


def round_row(
    ctx: RunContext, method: Method, rnd: int, updates: list[ClientUpdate], new: dict[str, torch.Tensor]
) -> tuple[dict[str, Any], bool]:
    """The logged row of round ``rnd`` (evaluated when due or diverged), and whether it diverged."""
    fl = ctx.cfg.fl
    train_loss = (
        float(np.average([u.train_loss for u in updates], weights=[u.num_samples for u in updates]))
        if updates
        else 0.0
    )
    row: dict[str, Any] = {"round": rnd, "train_loss": train_loss}
    row.update(diagnostic_columns("round", method.round_info(rnd), method))
    diverged = not math.isfinite(train_loss) or any(not torch.isfinite(v).all() for v in new.values())
    if diverged or (rnd + 1) % fl.eval_every == 0 or rnd == fl.rounds - 1:
        _evaluate(ctx, method, row)
        diverged = diverged or not math.isfinite(row["loss"])
    return row, diverged


def _checkpoint_state(
    ctx: RunContext, method: Method, rnd: int, rounds: list, selections: list, elapsed_s: float
) -> dict:
    return {
        "config_hash": ctx.cfg.hash(),
        "round": rnd,
        "values": ctx.model.state(sorted(ctx.touched)),
        "method": method.state_dict(),
        "touched": ctx.touched,
        "costs": ctx.costs.records,
        "rounds": rounds,
        "selections": selections,
        "elapsed_s": elapsed_s,
    }


def _resume(ctx: RunContext, method: Method, checkpoint: Checkpoint | None) -> tuple[list, list, int, float]:
    """(rounds, selections, first round to run, wall time of earlier attempts up to their last
    checkpoint) from the checkpoint of this very config, if any."""
    saved = checkpoint.load() if checkpoint else None
    if saved is None or saved.get("config_hash") != ctx.cfg.hash():
        return [], [], 0, 0.0
    ctx.model.load(saved["values"])
    method.load_state_dict(saved["method"])
    ctx.touched, ctx.costs.records = saved["touched"], saved["costs"]
    prior_s = float(saved.get("elapsed_s", 0.0))
    start = saved["round"] + 1
    log.info(
        "cell %s: resumed at round %d of %d from its checkpoint %s",
        cell_name(ctx.cfg),
        start,
        ctx.cfg.fl.rounds,
        checkpoint.path,
    )
    return saved["rounds"], saved["selections"], start, prior_s


def start_cell(cfg: RunConfig) -> tuple[RunContext, Method]:
    """The context and the set-up method of a cell (its params validated once, here)."""
    torch.manual_seed(cfg.seed)
    params = validate_params(cfg.method.name, cfg.method.params, num_blocks(cfg.model))
    ctx = build_context(cfg, params)
    method = make_method(cfg.method.name, params, ctx)
    method.setup()
    if cfg.fl.prefix_cache:
        ctx.enable_prefix_cache(method.never_trained_below())
    return ctx, method


def run_cell(
    cfg: RunConfig,
    on_round: Callable[[dict[str, Any]], None] | None = None,
    progress: bool = True,
    checkpoint: Checkpoint | None = None,
) -> CellResult:
    """Run one cell to the end (or until it diverges) and return everything it measured."""
    from tqdm.auto import tqdm  # tqdm.auto probes for IPython: only when a cell runs

    t0 = time.perf_counter()
    ctx, method = start_cell(cfg)
    schedule = participation_schedule(ctx)
    rounds, selections, start, prior_s = _resume(ctx, method, checkpoint)
    if start == 0:  # round 0 of the curves (``round = -1``): the pretrained body, its untrained head
        rounds.append({"round": -1})
        _evaluate(ctx, method, rounds[-1])
    for row in rounds if on_round else ():  # on_round sees the whole history, restored rounds too
        on_round(row)
    status = "ok"
    desc = f"{cfg.method.display} a={cfg.alpha} s={cfg.seed}"
    rng = range(start, cfg.fl.rounds)
    bar = tqdm(
        rng, desc=desc, leave=False, disable=not progress, unit="round", initial=start, total=cfg.fl.rounds
    )
    for rnd in bar:
        updates, new = run_round(ctx, method, rnd, schedule[rnd], selections)
        row, diverged = round_row(ctx, method, rnd, updates, new)
        rounds.append(row)
        if on_round:
            on_round(row)
        bar.set_postfix({k: f"{v:.3f}" for k, v in row.items() if k in (ACCURACY, "train_loss")})
        if diverged:
            status = "diverged"
            break
        if checkpoint and checkpoint.due(rnd) and rnd < cfg.fl.rounds - 1:
            elapsed = prior_s + time.perf_counter() - t0
            checkpoint.save(_checkpoint_state(ctx, method, rnd, rounds, selections, elapsed))
    bar.close()
    return cell_result(ctx, method, status, rounds, selections, prior_s + time.perf_counter() - t0)


def cell_result(
    ctx: RunContext, method: Method, status: str, rounds: list, selections: list, wall_s: float
) -> CellResult:
    """Everything a finished cell measured, with the facts of its run."""
    model = ctx.model
    counts = label_counts(ctx.splits.train.labels, ctx.clients, ctx.splits.num_labels)
    return CellResult(
        status=status,
        rounds=rounds,
        costs=ctx.costs.rows(),
        selections=selections,
        partition={
            "label_names": ctx.splits.label_names,
            "client_label_counts": counts.tolist(),
            "split_hash": ctx.splits.split_hash,
        },
        info={
            "wall_s": wall_s,  # every attempt
            "device": str(ctx.device),
            "precision_used": ctx.precision,
            "precision_reason": ctx.precision_reason,
            "model": model_label(ctx.cfg.model),
            "pooling": model.pooling,
            "method": method.run_info(),
            "family": method.family,
            "model_is_random": model.is_random,
            "num_blocks": model.num_blocks,
            "num_train": len(ctx.splits.train),
            "num_test": len(ctx.splits.test),
            "test_majority_share": float(
                np.bincount(ctx.splits.test.labels, minlength=1).max() / max(1, len(ctx.splits.test))
            ),
            "personalized": method.personalized,
            "personal_eval": "pooled client test splits, "
            + ("each client's personal state" if method.personalized else "global model"),
        },
    )
