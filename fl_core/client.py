"""Local training of one client on the shared model (no copy): only the planned parameters get
gradients, the frozen prefix runs under no_grad, and the client returns the delta of what it trained."""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from fl_core.context import RunContext
from fl_core.cost_model import client_step_memory
from fl_core.costs import BYTES_PER_PARAM, CostRecord, Timer, step_flops
from fl_core.methods.base import ClientUpdate, Method, TrainPlan
from fl_core.precision import run_precision


def make_optimizer(
    params: list[torch.nn.Parameter], ctx: RunContext, lr: float | None = None, kind: str | None = None
):
    fl = ctx.cfg.fl
    lr = lr or fl.lr
    if (kind or fl.optimizer) == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=fl.momentum, weight_decay=fl.weight_decay)
    return torch.optim.AdamW(params, lr=lr, weight_decay=fl.weight_decay)


def local_batches(ctx: RunContext, method: Method, rnd: int, cid: int) -> list[np.ndarray]:
    """All batches a client runs this round: epochs of seeded shuffles, ordered by the method,
    capped at ``fl.local_steps``."""
    out: list[np.ndarray] = []
    for epoch in range(ctx.cfg.fl.local_epochs):
        out += method.order_batches(rnd, cid, ctx.client_batches(cid, rnd, epoch))
    steps = ctx.cfg.fl.local_steps
    return out[:steps] if steps else out


def train_steps(
    ctx: RunContext,
    method: Method,
    cid: int,
    plan: TrainPlan,
    batches: list[np.ndarray],
    names: list[str],
    lr: float | None = None,
    optimizer: str | None = None,
) -> tuple[float, CostRecord]:
    """Optimizer steps on ``batches`` for the parameters ``names``; returns (mean loss, costs)."""
    model = ctx.model
    model.set_trainable(set(names))
    params = [model.params[n] for n in names]
    opt = make_optimizer(params, ctx, lr, optimizer) if params else None
    first = ctx.first_grad(plan)
    share = ctx.trained_share(names)
    rec = CostRecord(round=-1, client=cid, kind="train", trainable_params=model.numel(names))
    model.hf.train()
    losses = []
    shapes: set[tuple[int, int]] = set()
    with Timer() as t:
        for idx in batches:
            with run_precision(ctx):  # bf16: autocast forward and loss (in fp32); backward follows
                logits, y = ctx.logits(idx, "train", first)
                loss = F.cross_entropy(logits, y)
            losses.append(float(loss.detach()))
            if opt is not None and math.isfinite(losses[-1]):
                opt.zero_grad(set_to_none=True)
                loss.backward()
                method.after_backward(cid, plan)
                if ctx.cfg.fl.grad_clip:
                    torch.nn.utils.clip_grad_norm_(params, ctx.cfg.fl.grad_clip)
                opt.step()
            seq = int(ctx.splits.train.lengths[idx].max())
            f, b = (
                step_flops(model.arch, len(idx), seq, first, share) if opt else (ctx.flops(idx, None)[0], 0.0)
            )
            if opt is not None and (len(idx), seq) not in shapes:  # the same for every batch of one shape
                shapes.add((len(idx), seq))
                rec.peak_memory_bytes = max(
                    rec.peak_memory_bytes,
                    client_step_memory(
                        model,
                        names,
                        first,
                        len(idx),
                        seq,
                        optimizer or ctx.cfg.fl.optimizer,
                        ctx.cfg.fl.momentum,
                    ),
                )
            rec.flops_fwd += f
            rec.flops_bwd += b
            rec.samples += len(idx)
            rec.tokens += int(ctx.splits.train.lengths[idx].sum())
            rec.padded_tokens += len(idx) * seq
            if not math.isfinite(losses[-1]):
                break
    rec.wall_s = t.s
    model.set_trainable(set())
    return (float(np.mean(losses)) if losses else float("nan")), rec


def run_client(ctx: RunContext, method: Method, rnd: int, cid: int, plan: TrainPlan) -> ClientUpdate:
    """One client's round on the shared model. The caller restores the global values afterwards."""
    torch.manual_seed(ctx.torch_seed(rnd, cid))
    method.client_begin(rnd, cid, plan)
    names = ctx.trainable_names(plan)
    batches = local_batches(ctx, method, rnd, cid)
    loss, rec = train_steps(ctx, method, cid, plan, batches, names)
    with torch.no_grad():
        delta = {n: ctx.model.params[n].detach() - ctx.global_values[n] for n in names}
    rec.round = rnd
    rec.bytes_up = BYTES_PER_PARAM * sum(d.numel() for d in delta.values())
    rec.bytes_down = ctx.bytes_down()
    ctx.costs.add(rec)
    update = ClientUpdate(cid=cid, num_samples=ctx.num_samples(cid), plan=plan, delta=delta, train_loss=loss)
    method.client_end(rnd, cid, plan, update)
    return update
