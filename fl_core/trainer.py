"""Local training on the shared model, for a plan's parameters, knowing nothing of methods.

Every pass over client data runs here (a round's local steps, a scoring pass, a method's trial
epochs): the frozen prefix under no_grad, one optimizer step per batch (or gradients accumulated,
with no optimizer), and each batch counted once through :meth:`CostRecord.add_pass`. A caller may
change the loop only through plain callables (:class:`Hooks`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F

from fl_core.budget_model import client_step_memory
from fl_core.context import RunContext
from fl_core.cost_record import CostRecord, Timer
from fl_core.flops import step_flops
from fl_core.method_view import MethodView
from fl_core.optim import local_optimizer
from fl_core.plan import TrainPlan
from fl_core.precision import run_precision

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def make_optimizer(
    params: list[torch.nn.Parameter],
    ctx: RunContext | MethodView,
    lr: float | None = None,
    kind: str | None = None,
) -> torch.optim.Optimizer:
    """The local optimizer (``fl.optimizer`` unless ``kind``); the one place ``fl.lr`` is read.
    ``ctx``: the run context or a method's view (only its config is read)."""
    fl = ctx.cfg.fl
    return local_optimizer(params, kind or fl.optimizer, lr or fl.lr, fl.weight_decay, fl.momentum)


@dataclass(frozen=True)
class Hooks:
    """What a caller may do inside the loop: after each backward (before the step), after each epoch."""

    after_backward: Callable[[], None] | None = None
    epoch_end: Callable[[int], None] | None = None


@dataclass(frozen=True)
class Loop:
    """How batches are run. ``opt`` None: gradients accumulate over the pass (no step). ``nonfinite``:
    at a non-finite loss, ``stop`` (no step, end the pass), ``skip`` (no step, go on) or ``keep``
    (backward anyway). ``memory``: record the analytic peak step memory for this optimizer kind."""

    opt: torch.optim.Optimizer | None = None
    loss_fn: LossFn = F.cross_entropy
    nonfinite: Literal["stop", "skip", "keep"] = "stop"
    memory: str | None = None
    hooks: Hooks = Hooks()


def _step(ctx: RunContext, loop: Loop, loss: torch.Tensor, params: list, finite: bool) -> None:
    if not params or not (finite or loop.nonfinite == "keep"):
        return
    if loop.opt is not None:
        loop.opt.zero_grad(set_to_none=True)
    loss.backward()
    if loop.hooks.after_backward:
        loop.hooks.after_backward()
    if loop.opt is not None:
        if ctx.cfg.fl.grad_clip:
            torch.nn.utils.clip_grad_norm_(params, ctx.cfg.fl.grad_clip)
        loop.opt.step()


def train(
    ctx: RunContext,
    plan: TrainPlan,
    names: list[str],
    epochs: Sequence[Sequence[np.ndarray]],
    rec: CostRecord,
    loop: Loop = Loop(),
) -> float:
    """Run ``epochs`` (lists of batches of train rows) training the parameters ``names`` of ``plan``;
    adds every batch and the wall time to ``rec`` and returns the mean loss (NaN if no batch ran)."""
    model = ctx.model
    params = [model.params[n] for n in names]
    first = ctx.first_grad(plan)
    share = ctx.trained_share(names)
    lengths = ctx.splits.train.lengths
    shapes: set[tuple[int, int]] = set()
    losses: list[float] = []
    model.set_trainable(set(names))
    model.hf.train()
    t = Timer()
    try:
        with t:
            for ep, batches in enumerate(epochs):
                for idx in batches:
                    with run_precision(ctx):  # bf16: autocast forward and loss; backward follows
                        logits, y = ctx.logits(idx, "train", first)
                        loss = loop.loss_fn(logits, y)
                    losses.append(float(loss.detach()))
                    finite = math.isfinite(losses[-1])
                    _step(ctx, loop, loss, params, finite)
                    seq = int(lengths[idx].max())
                    if params:
                        rec.add_pass(lengths[idx], *step_flops(model.arch, len(idx), seq, first, share))
                    else:  # nothing trains: a forward-only batch
                        rec.add_pass(lengths[idx], ctx.flops(idx, None)[0])
                    if loop.memory and params and (len(idx), seq) not in shapes:  # same for one shape
                        shapes.add((len(idx), seq))
                        mem = client_step_memory(
                            model, names, first, len(idx), seq, loop.memory, ctx.cfg.fl.momentum
                        )
                        rec.peak_memory_bytes = max(rec.peak_memory_bytes, mem)
                    if not finite and loop.nonfinite == "stop":
                        return float(np.mean(losses))
                if loop.hooks.epoch_end:
                    loop.hooks.epoch_end(ep)
    finally:
        rec.wall_s += getattr(t, "s", 0.0)
        model.set_trainable(set())
    return float(np.mean(losses)) if losses else float("nan")
