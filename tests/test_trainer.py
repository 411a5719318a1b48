"""The trainer: every batch counted once through CostRecord.add_pass, hooks called where promised,
and a pass without optimizer accumulates the pass's gradient without changing the weights."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from fl_core.cost_record import CostRecord
from fl_core.flops import step_flops
from fl_core.plan import TrainPlan
from fl_core.simulator import build_context
from fl_core.trainer import Hooks, Loop, make_optimizer, train

from .conftest import tiny_cell


@pytest.fixture(scope="module")
def ctx():
    return build_context(tiny_cell("full"))


def _setup(ctx, blocks=(1,)):
    plan = TrainPlan.of(blocks)
    names = ctx.trainable_names(plan)
    return plan, names, ctx.client_batches(0, 0)[:3]


def test_each_batch_counted_once_with_the_step_flops(ctx):
    plan, names, batches = _setup(ctx)
    opt = make_optimizer([ctx.model.params[n] for n in names], ctx)
    rec = CostRecord(round=0, client=0, kind="train")
    calls = {"backward": 0, "epochs": []}
    hooks = Hooks(
        after_backward=lambda: calls.__setitem__("backward", calls["backward"] + 1),
        epoch_end=calls["epochs"].append,
    )
    snapshot = ctx.model.state(names)
    try:
        loss = train(ctx, plan, names, [batches, batches[:1]], rec, Loop(opt=opt, hooks=hooks))
    finally:
        ctx.model.load(snapshot)
    lengths = ctx.splits.train.lengths
    ran = batches + batches[:1]
    assert np.isfinite(loss) and calls == {"backward": 4, "epochs": [0, 1]}
    assert rec.samples == sum(len(b) for b in ran)
    assert rec.tokens == sum(int(lengths[b].sum()) for b in ran)
    assert rec.padded_tokens == sum(len(b) * int(lengths[b].max()) for b in ran)
    share = ctx.trained_share(names)
    want = [step_flops(ctx.model.arch, len(b), int(lengths[b].max()), 1, share) for b in ran]
    assert rec.flops_fwd == pytest.approx(sum(f for f, _ in want))
    assert rec.flops_bwd == pytest.approx(sum(b for _, b in want))
    assert not any(p.requires_grad for p in ctx.model.params.values())  # trainable again only in a pass


def test_pass_without_optimizer_accumulates_the_mean_gradient(ctx):
    plan, names, batches = _setup(ctx)
    model, total = ctx.model, sum(len(b) for b in batches)
    before = model.state(names)
    for n in names:  # gradients accumulate onto whatever is there
        model.params[n].grad = None

    def mean_loss(logits, y):
        return F.cross_entropy(logits, y, reduction="sum") / total

    torch.manual_seed(0)
    rec = CostRecord(round=0, client=0, kind="score")
    train(ctx, plan, names, [batches], rec, Loop(loss_fn=mean_loss, nonfinite="keep"))
    got = {n: model.params[n].grad for n in names}
    assert all(torch.equal(model.params[n], before[n]) for n in names)  # no step
    # the same forward passes (same dropout draws), summed by hand
    for n in names:
        model.params[n].grad = None
    model.set_trainable(set(names))
    torch.manual_seed(0)
    for idx in batches:
        mean_loss(*ctx.logits(idx, "train", ctx.first_grad(plan))).backward()
    model.set_trainable(set())
    for n in names:
        assert torch.allclose(got[n], model.params[n].grad, rtol=1e-5, atol=1e-7), n
        model.params[n].grad = None
    assert rec.samples == total
