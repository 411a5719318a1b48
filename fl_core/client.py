"""One client's round on the shared model (no copy): the method orders the batches and may mask
gradients; :mod:`fl_core.trainer` trains the plan's parameters; the client uploads the delta of what
it trained, less what the method keeps on the client (:meth:`Method.keep_local`)."""

from __future__ import annotations

import numpy as np
import torch

from fl_core.context import RunContext
from fl_core.cost_record import CostRecord
from fl_core.flops import BYTES_PER_PARAM
from fl_core.methods.base import Method
from fl_core.plan import ClientUpdate, TrainPlan
from fl_core.trainer import Hooks, Loop, make_optimizer, train


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
    params = [model.params[n] for n in names]
    opt = make_optimizer(params, ctx, lr, optimizer) if params else None
    rec = CostRecord(round=-1, client=cid, kind="train", trainable_params=model.numel(names))
    hooks = Hooks(after_backward=lambda: method.after_backward(cid, plan))
    loop = Loop(opt=opt, memory=optimizer or ctx.cfg.fl.optimizer, hooks=hooks)
    loss = train(ctx, plan, names, [batches], rec, loop)
    return loss, rec


def run_client(ctx: RunContext, method: Method, rnd: int, cid: int, plan: TrainPlan) -> ClientUpdate:
    """One client's round on the shared model. The caller restores the global values afterwards."""
    torch.manual_seed(ctx.torch_seed(rnd, cid))
    method.client_begin(rnd, cid, plan)
    names = ctx.trainable_names(plan)
    batches = local_batches(ctx, method, rnd, cid)
    loss, rec = train_steps(ctx, method, cid, plan, batches, names)
    kept = method.keep_local(cid, plan)
    with torch.no_grad():
        delta = {n: ctx.model.params[n].detach() - ctx.global_values[n] for n in names if n not in kept}
    rec.round = rnd
    rec.bytes_up = BYTES_PER_PARAM * sum(d.numel() for d in delta.values())
    rec.bytes_down = ctx.bytes_down()
    ctx.costs.add(rec)
    update = ClientUpdate(cid, ctx.num_samples(cid), plan, delta, loss, num_batches=len(batches))
    method.client_end(rnd, cid, plan, update)
    return update
