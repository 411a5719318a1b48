import numpy as np
import torch

from fl_core.client import run_client
from fl_core.methods import make_method
from fl_core.methods.base import TrainPlan
from fl_core.simulator import build_context, run_cell
from tests.conftest import tiny_cell


def test_smoke_run_on_tiny_bert_is_labelled_random():
    res = run_cell(tiny_cell("full"), progress=False)
    assert res.status == "ok"
    assert [r["round"] for r in res.rounds] == [-1, 0, 1] and "accuracy" in res.rounds[-1]
    pre = res.rounds[0]  # the pretrained body with its untrained head, before any training
    assert {"accuracy", "macro_f1", "loss", "personal_accuracy"} <= set(pre) and "train_loss" not in pre
    assert "RANDOM" in res.info["model"] and res.info["model_is_random"]
    assert np.asarray(res.partition["client_label_counts"]).sum() == res.info["num_train"]


def test_same_config_same_numbers():
    a = run_cell(tiny_cell("random", k=1), progress=False)
    b = run_cell(tiny_cell("random", k=1), progress=False)
    assert a.rounds == b.rounds and a.selections == b.selections


def test_only_selected_blocks_change_and_frozen_prefix_gets_no_grad():
    ctx = build_context(tiny_cell("top_k", k=1))
    method = make_method("top_k", {"k": 1}, ctx)
    plan = TrainPlan.of([1])
    names = ctx.trainable_names(plan)
    before = {n: p.detach().clone() for n, p in ctx.model.params.items()}
    ctx.global_values = ctx.model.state(names)
    upd = run_client(ctx, method, 0, 0, plan)
    assert set(upd.delta) == set(names)
    for n, p in ctx.model.params.items():
        if n not in names:
            assert torch.equal(p, before[n]), n  # never touched
            assert p.grad is None, n  # the frozen prefix and unselected blocks got no gradient
    assert any(upd.delta[n].abs().sum() > 0 for n in names)
    rec = ctx.costs.records[-1]
    assert rec.trainable_params == ctx.model.numel(names) and rec.bytes_up == 4 * rec.trainable_params
    assert rec.flops_bwd > 0 and rec.samples > 0


def test_client_does_not_leak_into_the_next_client():
    """One shared model: after a client, the global values are restored exactly."""
    ctx = build_context(tiny_cell("full"))
    method = make_method("full", {}, ctx)
    plan = method.configure_train(0, [0])[0]
    names = ctx.trainable_names(plan)
    ctx.global_values = ctx.model.state(names)
    run_client(ctx, method, 0, 0, plan)
    ctx.model.load(ctx.global_values)
    for n in names:
        assert torch.equal(ctx.model.params[n], ctx.global_values[n])


def test_diverging_run_is_recorded_as_diverged():
    cell = tiny_cell("full")
    cell = cell.model_copy(update={"fl": cell.fl.model_copy(update={"lr": 1e30, "grad_clip": None})})
    res = run_cell(cell, progress=False)
    assert res.status == "diverged"


def test_real_minilm_on_real_data_learns():
    """A short run of the packaged pretrained MiniLM-L6 on real BBC News."""
    from fl_core.config import DataConfig, FLConfig, MethodSpec, RunConfig

    cell = RunConfig(
        dataset="bbc_news",
        alpha=1.0,
        method=MethodSpec(name="top_k", params={"k": 1}),
        seed=0,
        model="minilm-l6",
        fl=FLConfig(
            num_clients=4, clients_per_round=2, rounds=2, local_steps=3, batch_size=16, max_len=32, lr=1e-3
        ),
        data=DataConfig(max_test_samples=200),
    )
    res = run_cell(cell, progress=False)
    assert res.status == "ok" and not res.info["model_is_random"]
    assert res.rounds[-1]["accuracy"] > 0.5  # 5 classes: chance is ~0.23


def test_prefix_cache_gives_the_same_numbers():
    """Caching the output of never-trained blocks is a speed-up only."""
    cached = run_cell(tiny_cell("top_k", k=1), progress=False)
    cell = tiny_cell("top_k", k=1)
    plain = run_cell(
        cell.model_copy(update={"fl": cell.fl.model_copy(update={"prefix_cache": False})}), progress=False
    )
    for a, b in zip(cached.rounds, plain.rounds, strict=True):
        assert a.keys() == b.keys()
        for k in a:
            assert abs(a[k] - b[k]) < 1e-4, k
