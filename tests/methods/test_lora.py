"""FedAvg-LoRA: frozen base, only adapters + head travel, sample-weighted FedAvg, honest bytes_up."""

from __future__ import annotations

import dataclasses
import os

os.environ["HF_HUB_OFFLINE"] = "1"

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from fl_core.config import RunConfig  # noqa: E402
from fl_core.methods import make_method  # noqa: E402
from fl_core.methods.lora import LORA_TAG, add_lora, lora_pairs  # noqa: E402
from fl_core.models import HEAD, build_model  # noqa: E402
from fl_core.simulator import build_context, run_cell, run_round  # noqa: E402
from tests.conftest import TINY_FL, tiny_cell  # noqa: E402

FL = TINY_FL  # max_len 16, 4 clients, 2 per round, 2 rounds, 2 local steps, batch 8 (tests/conftest.py)


def cfg(params=None, **fl) -> RunConfig:
    """A tiny-bert (RANDOM WEIGHTS) cell on 200/50 BBC News samples; ``fl`` overrides FL settings."""
    c = tiny_cell("lora", **(params or {}))
    return c.model_copy(update={"fl": FL.model_copy(update=fl)})


@pytest.fixture(scope="module")
def one_round():
    torch.manual_seed(0)
    ctx = build_context(cfg())
    ids, mask, _ = ctx.tensors(ctx.clients[0][:4])
    ctx.model.hf.eval()
    with torch.no_grad():
        before_logits = ctx.model.forward(ids, mask)
    method = make_method("lora", {}, ctx)
    method.setup()
    with torch.no_grad():
        after_logits = ctx.model.forward(ids, mask)
    base = {
        n: p.detach().clone()
        for n, p in ctx.model.params.items()
        if LORA_TAG not in n and ctx.model.group_of[n] != HEAD
    }
    lora0 = {n: p.detach().clone() for n, p in ctx.model.params.items() if LORA_TAG in n}
    updates, new = run_round(ctx, method, 0, [0, 1], [])
    return dict(
        ctx=ctx,
        method=method,
        base=base,
        lora0=lora0,
        updates=updates,
        new=new,
        logits=(before_logits, after_logits),
    )


def test_injection_is_identity_at_init_and_covers_every_block(one_round):
    ctx, method = one_round["ctx"], one_round["method"]
    before, after = one_round["logits"]
    torch.testing.assert_close(before, after)  # B = 0: the adapted model computes the same function
    pairs = lora_pairs(ctx.model)
    assert sorted({q.block for q in pairs}) == list(range(ctx.model.num_blocks))
    assert {q.module.rsplit(".", 1)[1] for q in pairs} == {"query", "value"}
    assert all(q.scaling == pytest.approx(16 / 8) for q in pairs)
    assert sorted(method.adapter_names) == sorted(n for n in ctx.model.params if LORA_TAG in n)
    assert all(ctx.model.group_of[n] in range(ctx.model.num_blocks) for n in method.adapter_names)


def test_add_lora_is_seeded_and_targets_are_configurable(one_round):
    base_ctx = one_round["ctx"]

    def a_weights(seed, targets):  # a fresh model in a copy of the context, with this cell seed
        c = cfg().model_copy(update={"seed": seed})
        ctx = dataclasses.replace(
            base_ctx,
            cfg=c,
            model=build_model("tiny-bert", base_ctx.splits.num_labels, 0),
            global_values={},
            touched=set(),
        )
        names = add_lora(ctx, r=4, alpha=8, targets=targets)
        return {n: ctx.model.params[n].detach().clone() for n in names if "lora_A" in n}

    a, b, c = (
        a_weights(0, ["query", "value"]),
        a_weights(0, ["query", "value"]),
        a_weights(1, ["query", "value"]),
    )
    assert all(torch.equal(a[n], b[n]) for n in a)
    assert not all(torch.equal(a[n], c[n]) for n in a)
    k = a_weights(0, ["key"])
    assert k and all(".key." in n and v.shape[0] == 4 for n, v in k.items())


def test_frozen_base_weights_are_bit_identical(one_round):
    ctx = one_round["ctx"]
    assert one_round["base"], "no base weights found"
    for n, v in one_round["base"].items():
        assert torch.equal(ctx.model.params[n], v), n
    # ... while the adapters did train (B moved away from zero), so the check above is not vacuous
    lora_b = [n for n in one_round["lora0"] if "lora_B" in n]
    assert any(not torch.equal(ctx.model.params[n], one_round["lora0"][n]) for n in lora_b)


def test_only_adapters_and_head_travel(one_round):
    ctx = one_round["ctx"]
    expected = {n for n in ctx.model.params if LORA_TAG in n or ctx.model.group_of[n] == HEAD}
    for u in one_round["updates"]:
        assert set(u.delta) == expected
    assert set(one_round["new"]) == expected


def test_aggregate_is_sample_weighted_mean_of_client_adapters(one_round):
    ctx, updates, new = one_round["ctx"], one_round["updates"], one_round["new"]
    w = np.array([u.num_samples for u in updates], dtype=float)
    assert w[0] != w[1]  # unequal clients, so a plain mean would fail
    for n, v in new.items():
        client_values = [ctx.global_values[n] + u.delta[n] for u in updates]
        expect = sum(wi * cv for wi, cv in zip(w, client_values, strict=True)) / w.sum()
        torch.testing.assert_close(v, expect, rtol=1e-5, atol=1e-7)


def test_bytes_up_counts_adapters_and_head(one_round):
    ctx = one_round["ctx"]
    n = sum(
        p.numel()
        for name, p in ctx.model.params.items()
        if LORA_TAG in name or ctx.model.group_of[name] == HEAD
    )
    recs = [r for r in ctx.costs.records if r.kind == "train"]
    assert len(recs) == 2
    assert all(r.bytes_up == 4 * n for r in recs)
    assert all(r.trainable_params == n for r in recs)


def test_run_cell_reports_global_and_pooled_client_metrics():
    res = run_cell(cfg(), progress=False)
    last = res.rounds[-1]
    for k in ("accuracy", "macro_f1", "personal_accuracy", "personal_macro_f1"):
        assert 0.0 <= last[k] <= 1.0
    assert res.info["personalized"] is False and "global model" in res.info["personal_eval"]


# -- one LoRA dropout for every LoRA method (issue 12) ------------------------------------------------
LORA_METHODS = ("lora", "lora_budget", "fibecfed")


def test_lora_methods_share_one_dropout_default():
    from fl_core.methods import validate_params
    from fl_core.models.lora import LORA_DROPOUT

    got = {m: validate_params(m, {}, 6).lora_dropout for m in LORA_METHODS}
    assert set(got.values()) == {LORA_DROPOUT}, got  # before: lora 0.0, fibecfed 0.05
    assert LORA_DROPOUT > 0


@pytest.mark.parametrize("grid", ["default", "paper_fibecfed", "paper_tiny"])
def test_grids_write_the_dropout_into_every_lora_cells_hash(grid):
    from pathlib import Path

    from fl_core.validate import load_grid

    g = load_grid(Path(__file__).parents[2] / "configs" / f"{grid}.yaml")
    cells = [c for c in g.cells() if c.method.name in LORA_METHODS]
    assert cells
    assert {c.method.params.get("lora_dropout") for c in cells} == {0.05}  # explicit: in the hashed config
    c = cells[0]
    other = c.model_copy(
        update={"method": c.method.model_copy(update={"params": {**c.method.params, "lora_dropout": 0.0}})}
    )
    assert other.hash() != c.hash()


def test_budget_model_does_not_import_the_method_registry():
    import ast
    import inspect

    import fl_core.budget_model

    tree = ast.parse(inspect.getsource(fl_core.budget_model))
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    imported |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    assert not {m for m in imported if m and m.startswith("fl_core.methods")}  # before: methods.lora, lazily
