"""FedTLU (Park & Joe-Wong 2024): the score, the top-k choice, and what the aggregate applies."""

from __future__ import annotations

import math
import os
from types import SimpleNamespace

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import pytest
import torch

from fl_core.methods import METHODS, validate_params
from fl_core.methods.base import ClientUpdate, TrainPlan
from fl_core.methods.fedtlu import FedTLU, block_scores, tlu_score, top_k_blocks
from fl_core.models import HEAD
from fl_core.simulator import run_cell
from tests.conftest import tiny_cell


# -- the score ------------------------------------------------------------------------------------
def test_score_is_scale_invariant_and_matches_its_closed_form():
    g = torch.Generator().manual_seed(0)
    for shape in [(7,), (16, 8), (3, 4, 5)]:
        d = torch.randn(*shape, generator=g, dtype=torch.float64) + 0.3
        s = tlu_score(d)
        for c in (1e-3, 0.5, 3.0, 1e4, -2.0):
            assert tlu_score(c * d) == pytest.approx(s, rel=1e-8)  # exact up to the 1e-12 eps
            assert tlu_score((c * d).float()) == pytest.approx(s, rel=1e-5)  # float32 input too
        assert tlu_score(1e-6 * d) == pytest.approx(s, rel=1e-5)  # the eps matters only for tiny updates
        dd = d.double()
        mean, std = float(dd.mean()), float(dd.std(correction=0))
        assert s == pytest.approx(math.sqrt(1 + (mean / std) ** 2), rel=1e-9)


def test_coherent_tensor_scores_higher_than_noise():
    g = torch.Generator().manual_seed(1)
    noise = torch.randn(64, 64, generator=g)
    coherent = 0.01 + 0.001 * torch.randn(64, 64, generator=g)  # tiny, but all the same way
    assert tlu_score(coherent) > 5 * tlu_score(noise)
    assert tlu_score(noise) == pytest.approx(1.0, abs=0.05)  # zero-mean noise: sqrt(1 + ~0)


@pytest.mark.parametrize(
    "t",
    [
        torch.zeros(5, 5),
        torch.full((4, 3), 2.5),
        torch.tensor([3.0]),
        torch.tensor([0.0]),
        torch.tensor([-1e-8]),
        torch.zeros(0),
    ],
)
def test_score_is_nan_free_on_degenerate_tensors(t):
    s = tlu_score(t)
    assert math.isfinite(s) and s >= 0
    scores = block_scores({"w": t}, {"w": 0}, 1)
    assert np.isfinite(scores).all()


def test_zero_update_scores_zero_and_missing_blocks_are_nan():
    assert tlu_score(torch.zeros(3, 3)) == 0.0
    s = block_scores({"a": torch.ones(3), "b": torch.randn(4)}, {"a": 0, "b": 0}, 3)
    assert np.isfinite(s[0]) and np.isnan(s[1:]).all()
    assert top_k_blocks(s, 2)[0] == 0  # an unscored block never beats a scored one
    assert top_k_blocks(np.array([1.0, 2.0, 2.0, 0.5]), 2) == [1, 2]
    assert top_k_blocks(np.array([1.0, 1.0, 1.0]), 1) == [0]  # ties: lower index


# -- the method on a crafted update ----------------------------------------------------------------
def _fake_ctx(num_blocks=4, shape=(16, 16)):
    group_of, glob = {}, {}
    for j in range(num_blocks):
        for t in ("weight", "bias"):
            name = f"blocks.{j}.{t}"
            group_of[name] = j
            glob[name] = torch.randn(
                shape if t == "weight" else shape[:1], generator=torch.Generator().manual_seed(j)
            )
    group_of["head.weight"] = HEAD
    glob["head.weight"] = torch.zeros(3, 16)
    model = SimpleNamespace(group_of=group_of, num_blocks=num_blocks)
    return SimpleNamespace(model=model, global_values=glob)


def _crafted_updates(ctx, coherent_block, n_clients=3):
    g = torch.Generator().manual_seed(7)
    plan = TrainPlan.of(range(ctx.model.num_blocks))
    ups = []
    for c in range(n_clients):
        delta = {}
        for n, v in ctx.global_values.items():
            if ctx.model.group_of[n] == coherent_block:
                delta[n] = 0.01 + 0.001 * torch.randn(v.shape, generator=g)  # small, coherent
            else:
                delta[n] = 0.5 * torch.randn(v.shape, generator=g)  # large, zero-mean noise
        ups.append(ClientUpdate(cid=c, num_samples=10 + c, plan=plan, delta=delta, train_loss=0.0))
    return ups


@pytest.mark.parametrize("coherent", [0, 2, 3])
def test_coherent_block_is_chosen_and_only_it_is_applied(coherent):
    ctx = _fake_ctx()
    m = FedTLU(FedTLU.Params(k=1), ctx)
    plans = m.configure_train(0, [0, 1, 2])
    assert all(p.blocks == frozenset(range(4)) for p in plans.values())
    new = m.aggregate(0, _crafted_updates(ctx, coherent))
    assert m.history[-1]["chosen"] == [coherent]
    scores = m.history[-1]["scores"]
    assert int(np.argmax(scores)) == coherent
    assert {ctx.model.group_of[n] for n in new} == {coherent, HEAD}


def test_k_defaults_to_half_the_blocks_and_warmup_applies_everything():
    ctx = _fake_ctx(num_blocks=6)
    m = FedTLU(FedTLU.Params(warmup_rounds=2), ctx)
    assert m.k == 3
    for rnd in range(3):
        m.configure_train(rnd, [0, 1, 2])
        new = m.aggregate(rnd, _crafted_updates(ctx, coherent_block=4))
        groups = {ctx.model.group_of[n] for n in new}
        if rnd < 2:
            assert groups == {*range(6), HEAD}  # warm-up: full FedAvg
            assert m.history[-1]["warmup"]
        else:
            assert len(groups - {HEAD}) == 3 and 4 in groups


def test_selected_variant_trains_last_choice_and_refreshes():
    ctx = _fake_ctx(num_blocks=4)
    m = FedTLU(FedTLU.Params(k=1, client_training="selected", rescore_every=3), ctx)
    trained = []
    for rnd in range(7):
        plans = m.configure_train(rnd, [0, 1])
        trained.append(sorted(plans[0].blocks))
        ups = _crafted_updates(ctx, coherent_block=1, n_clients=2)
        ups = [
            ClientUpdate(
                u.cid,
                u.num_samples,
                plans[0],
                {n: d for n, d in u.delta.items() if ctx.model.group_of[n] in {*plans[0].blocks, HEAD}},
                0.0,
            )
            for u in ups
        ]
        new = m.aggregate(rnd, ups)
        assert {ctx.model.group_of[n] for n in new} == {1, HEAD}
    full = [0, 1, 2, 3]
    assert trained == [full, [1], [1], full, [1], [1], full]


def test_k_is_validated_against_the_model():
    assert "fedtlu" in METHODS
    validate_params("fedtlu", {"k": 2}, 2)
    with pytest.raises(ValueError, match="k=3"):
        validate_params("fedtlu", {"k": 3}, 2)
    with pytest.raises(ValueError):
        validate_params("fedtlu", {"kk": 1}, 2)  # extra="forbid"
    with pytest.raises(ValueError):
        validate_params("fedtlu", {"rescore_every": 0}, 2)


# -- end to end on tiny-bert: non-chosen blocks are bit-identical ------------------------------------
def test_run_cell_freezes_unchosen_blocks_bit_for_bit(monkeypatch):
    snapshots, methods = [], []
    orig = FedTLU.configure_train

    def spy(self, rnd, clients):
        methods.append(self)
        snapshots.append({n: p.detach().clone() for n, p in self.ctx.model.params.items()})
        return orig(self, rnd, clients)

    monkeypatch.setattr(FedTLU, "configure_train", spy)
    cfg = tiny_cell("fedtlu", k=1, warmup_rounds=1)
    cfg = cfg.model_copy(update={"fl": cfg.fl.model_copy(update={"rounds": 3, "lr": 1e-2})})
    res = run_cell(cfg, progress=False)
    assert res.status == "ok" and len(snapshots) == 3
    m = methods[0]
    group = m.ctx.model.group_of
    assert [h["chosen"] for h in m.history][0] == [0, 1]  # warm-up round: everything applied
    for rnd in range(2):
        before, after = snapshots[rnd], snapshots[rnd + 1]
        chosen = set(m.history[rnd]["chosen"])
        for n, v in before.items():
            g = group[n]
            if g == "embeddings" or (isinstance(g, int) and g not in chosen):
                assert torch.equal(v, after[n]), (rnd, n)
        for j in chosen:
            assert any(not torch.equal(before[n], after[n]) for n in m.ctx.model.names_in(j)), (rnd, j)
        assert any(not torch.equal(before[n], after[n]) for n in m.ctx.model.names_in(HEAD))
    assert all(len(h["chosen"]) == 1 for h in m.history[1:])


def test_plans_carry_round_info_and_state_round_trips():
    ctx = _fake_ctx()
    m = FedTLU(FedTLU.Params(k=2, warmup_rounds=1), ctx)
    assert m.configure_train(0, [5])[5].info == {"trains_all": True, "warmup": True}
    m.aggregate(0, _crafted_updates(ctx, coherent_block=3))
    m.configure_train(1, [5])
    m.aggregate(1, _crafted_updates(ctx, coherent_block=3))
    m2 = FedTLU(FedTLU.Params(k=2, warmup_rounds=1), ctx)
    m2.load_state_dict(m.state_dict())
    assert m2.chosen == m.chosen and 3 in m2.chosen and m2.history == m.history


# -- score: block (issue 12) -------------------------------------------------------------------------
def _layer_ctx_and_update(drifting: int, num_blocks: int = 3):
    """Blocks of one 64x64 matrix + one 64-entry LayerNorm vector. Block ``drifting``: the matrix moves
    coherently, the LayerNorm is noise; every other block: a noisy matrix and a coherent LayerNorm."""
    g = torch.Generator().manual_seed(12)
    group_of, glob, delta = {}, {}, {}
    for j in range(num_blocks):
        for t, shape in (("dense.weight", (64, 64)), ("LayerNorm.weight", (64,))):
            name = f"blocks.{j}.{t}"
            group_of[name] = j
            glob[name] = torch.zeros(shape)
            noise = torch.randn(shape, generator=g)
            coherent = (t == "dense.weight") == (j == drifting)
            delta[name] = 0.01 + 0.004 * noise if coherent else 0.01 * noise
            if t == "LayerNorm.weight" and coherent:
                delta[name] = 0.01 + 0.0001 * noise  # a tiny vector, very coherent
    group_of["head.weight"], glob["head.weight"] = HEAD, torch.zeros(3, 4)
    ctx = SimpleNamespace(model=SimpleNamespace(group_of=group_of, num_blocks=num_blocks), global_values=glob)
    up = ClientUpdate(cid=0, num_samples=1, plan=TrainPlan.of(range(num_blocks)), delta=delta, train_loss=0.0)
    return ctx, up


@pytest.mark.parametrize("drifting", [0, 2])
def test_block_score_picks_the_coherently_drifting_layer(drifting):
    ctx, up = _layer_ctx_and_update(drifting)
    out = {}
    for mode in (None, "tensor_sum"):  # None: the default
        m = FedTLU(FedTLU.Params(k=1) if mode is None else FedTLU.Params(k=1, score=mode), ctx)
        m.configure_train(0, [0])
        m.aggregate(0, [up])
        out[mode] = m.round_info(0)
    assert out[None]["applied_blocks"] == [drifting]  # the default scores the whole layer
    assert out[None]["score_mode"] == "block"
    assert out["tensor_sum"]["applied_blocks"] != [drifting]  # the LayerNorm vectors decide instead
    for info in out.values():
        s = [v for v in info["block_scores"] if v is not None]
        assert info["block_score_spread"] == pytest.approx(max(s) - min(s))
    print(
        f"drifting={drifting}: tensor_sum scores {np.round(out['tensor_sum']['block_scores'], 2).tolist()} "
        f"picks {out['tensor_sum']['applied_blocks']}; block scores "
        f"{np.round(out[None]['block_scores'], 2).tolist()} picks {out[None]['applied_blocks']}"
    )


def test_block_score_is_the_score_of_the_concatenation():
    a, b = torch.randn(5, 4), torch.randn(3)
    s = block_scores({"a": a, "b": b}, {"a": 0, "b": 0}, 1)
    assert s[0] == pytest.approx(tlu_score(torch.cat([a.flatten(), b])))
    s2 = block_scores({"a": a, "b": b}, {"a": 0, "b": 0}, 1, "tensor_sum")
    assert s2[0] == pytest.approx(tlu_score(a) + tlu_score(b))
    with pytest.raises(ValueError):
        validate_params("fedtlu", {"score": "mean"}, 4)
