"""FibecFed: pacing, Fisher trace vs a slow loop, GAL/PL split, sparse masks, honest aggregation."""

from __future__ import annotations

import math
import os

os.environ["HF_HUB_OFFLINE"] = "1"

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from fl_core.config import RunConfig  # noqa: E402
from fl_core.methods import make_method  # noqa: E402
from fl_core.methods.fibecfed import gal_sensitivity, pacing_count, per_sample_fisher_trace  # noqa: E402
from fl_core.methods.lora import LORA_TAG, add_lora  # noqa: E402
from fl_core.models import HEAD  # noqa: E402
from fl_core.simulator import build_context, run_cell, run_round  # noqa: E402
from tests.conftest import TINY_FL, tiny_cell  # noqa: E402

FL = TINY_FL  # max_len 16, 4 clients, 2 per round, 2 rounds, 2 local steps, batch 8 (tests/conftest.py)
MASKED = {
    "n_gal": 1,
    "mask_ratio": 0.25,
    "mask_epochs": 2,
}  # tiny-bert: 1 GAL + 1 PL block; 1/4 of PL neurons masked


def cfg(params=None, **fl) -> RunConfig:
    """A tiny-bert (RANDOM WEIGHTS) cell on 200/50 BBC News samples; ``fl`` overrides FL settings."""
    c = tiny_cell("fibecfed", **(params or {}))
    return c.model_copy(update={"fl": FL.model_copy(update=fl)})


# -- curriculum -------------------------------------------------------------------------------------
def test_pacing_schedule():
    T = 10
    assert pacing_count(10, 0, T) == 6  # 60% at t = 0
    assert pacing_count(10, 4, T) == 8  # 0.6 + 0.4·4/8
    assert [pacing_count(10, t, T) for t in (8, 9)] == [10, 10]  # all data from 0.8·T on
    assert pacing_count(7, 0, T) == math.ceil(0.6 * 7)
    counts = [pacing_count(25, t, T) for t in range(T)]
    assert counts == sorted(counts) and counts[-1] == 25
    assert pacing_count(1, 0, T) == 1 and pacing_count(0, 0, T) == 0


@pytest.fixture(scope="module")
def curriculum():
    ctx = build_context(cfg(rounds=10, local_steps=None))  # no cap: the spec's pacing as it is
    method = make_method("fibecfed", {"mask_ratio": 0}, ctx)
    method.setup()
    return ctx, method


def test_order_batches_is_fixed_easiest_first_and_paced(curriculum):
    ctx, method = curriculum
    for cid in range(len(ctx.clients)):
        fixed = method.order[cid]
        # a fixed per-client batching of all the client's data
        assert sorted(np.concatenate(fixed).tolist()) == sorted(ctx.clients[cid].tolist())
        pos = {int(i): j for j, i in enumerate(ctx.clients[cid])}
        means = [method.difficulty[cid][[pos[int(i)] for i in b]].mean() for b in fixed]
        assert means == sorted(means)  # easiest first
        shuffled = ctx.client_batches(cid, 0, 0)
        got0 = method.order_batches(0, cid, shuffled)
        assert len(got0) == math.ceil(0.6 * len(fixed))
        assert all(np.array_equal(a, b) for a, b in zip(got0, fixed, strict=False))
        for t in (8, 9):  # 0.8·T = 8
            got = method.order_batches(t, cid, ctx.client_batches(cid, t, 0))
            assert len(got) == len(fixed)
    # the ordering is by a real score: not all samples are equally difficult
    assert np.ptp(np.concatenate(list(method.difficulty.values()))) > 0


def test_curriculum_off_keeps_the_simulator_order():
    ctx = build_context(cfg())
    method = make_method("fibecfed", {"curriculum": "off", "mask_ratio": 0}, ctx)
    method.setup()
    batches = ctx.client_batches(0, 0, 0)
    assert method.order_batches(0, 0, batches) is batches
    assert not method.difficulty  # no Fisher scoring at all


# -- Fisher trace -----------------------------------------------------------------------------------
@pytest.mark.parametrize("pooling", ["cls", "mean"])  # mean: MiniLM-L6's head, the token mask in vmap
def test_vmap_fisher_trace_equals_slow_per_sample_loop(pooling, monkeypatch):
    monkeypatch.setattr("fl_core.models.registry.model_pooling", lambda name: pooling)
    ctx = build_context(cfg())
    assert ctx.model.pooling == pooling
    names = [n for n in add_lora(ctx, r=4, alpha=8, dropout=0.1)]
    names += ctx.model.names_in(HEAD)
    with torch.no_grad():  # non-zero B, so the A gradients are not trivially zero
        for n in names:
            if "lora_B" in n:
                ctx.model.params[n].normal_(0, 0.1)
    idx = ctx.clients[0][:12].copy()
    lengths = ctx.splits.train.lengths
    lengths[idx] = np.array([16, 5, 9, 16, 3, 12, 7, 16, 4, 11, 16, 6])  # ragged rows: padding inside a chunk
    fast = per_sample_fisher_trace(ctx, idx, names, chunk=5)
    model = ctx.model
    model.hf.eval()
    model.set_trainable(set(names))
    slow = []
    for i in idx:  # one sample at a time, unpadded, plain autograd
        ids, mask, y = ctx.tensors(np.array([i]))
        loss = F.cross_entropy(model.forward(ids, mask, 0), y)
        grads = torch.autograd.grad(loss, [model.params[n] for n in names])
        slow.append(sum(float(g.double().pow(2).sum()) for g in grads))
    model.set_trainable(set())
    np.testing.assert_allclose(fast, slow, rtol=1e-4, atol=1e-8)
    assert np.ptp(slow) > 0
    # the LoRA part matters: the trace over LoRA only is positive and smaller than the total
    lora_only = per_sample_fisher_trace(ctx, idx, [n for n in names if LORA_TAG in n], chunk=5)
    assert np.all(lora_only > 0) and np.all(lora_only < fast)


def test_gal_sensitivity_matches_hf_hidden_states():
    ctx = build_context(cfg())
    add_lora(ctx)
    model = ctx.model
    with torch.no_grad():  # random LayerNorm gains: with gain 1 a post-LN block output has a fixed row norm
        for n, p in model.params.items():
            if "LayerNorm.weight" in n:
                p.uniform_(0.5, 1.5)
    idx = ctx.clients[0][:10]
    s = gal_sensitivity(ctx, idx, 0.5)
    # independently: HF's own forward from inputs_embeds, hidden_states[l + 1] = output of block l
    ids, mask, y = ctx.tensors(idx)
    model.hf.eval()
    e = model.embeddings.word_embeddings(ids).detach().requires_grad_(True)
    loss = F.cross_entropy(
        model.hf(inputs_embeds=e, attention_mask=mask, token_type_ids=torch.zeros_like(ids)).logits, y
    )
    (g,) = torch.autograd.grad(loss, e)
    with torch.no_grad():
        hs = model.hf.bert(inputs_embeds=e, attention_mask=mask, output_hidden_states=True).hidden_states[1:]
        hs2 = model.hf.bert(
            inputs_embeds=e + 0.5 * g / g.norm(), attention_mask=mask, output_hidden_states=True
        ).hidden_states[1:]
    expect = [
        abs(float(b[:, 0].norm()) - float(a[:, 0].norm())) / float(a[:, 0].norm())
        for a, b in zip(hs, hs2, strict=True)
    ]
    assert s.shape == (model.num_blocks,) and np.all(s > 1e-4)
    np.testing.assert_allclose(s, expect, rtol=1e-3)


# -- GAL / PL, masks, aggregation -------------------------------------------------------------------
@pytest.fixture(scope="module")
def trained():
    """Two rounds without a local_steps cap (clients run their paced batches), 1 GAL + 1 PL block."""
    ctx = build_context(cfg(local_steps=None, rounds=4))
    method = make_method("fibecfed", MASKED, ctx)
    method.setup()
    nb = {c: len(method.order[c]) for c in range(len(ctx.clients))}
    a, b = max(nb, key=nb.get), min(nb, key=nb.get)  # the clients with the most / fewest batches
    clients = sorted({a, b})
    init = {n: p.detach().clone() for n, p in ctx.model.params.items()}
    rounds = [run_round(ctx, method, 0, clients, [])]
    after_r0 = {c: {n: v.clone() for n, v in method.personal[c].items()} for c in clients}
    rounds.append(run_round(ctx, method, 1, clients, []))
    return dict(ctx=ctx, method=method, clients=clients, init=init, rounds=rounds, after_r0=after_r0)


def test_gal_pl_split(trained):
    ctx, m = trained["ctx"], trained["method"]
    assert len(m.gal) == 1 and len(m.pl) == 1 and set(m.gal) | set(m.pl) == {0, 1}
    assert m.sensitivity[m.gal[0]] <= m.sensitivity[m.pl[0]]  # GAL = least sensitive
    assert m.pl_names and all(ctx.model.group_of[n] == m.pl[0] and LORA_TAG in n for n in m.pl_names)


def test_masks_cover_pl_only_with_one_global_threshold(trained):
    ctx, m = trained["ctx"], trained["method"]
    assert set(m.masks) == set(range(len(ctx.clients)))  # decided at setup, for every client
    for masks in m.masks.values():
        assert masks and all(ctx.model.group_of[n] == m.pl[0] and "lora_B" in n for n in masks)
        total = sum(v.numel() for v in masks.values())
        assert sum(int(v.sum()) for v in masks.values()) == round(0.25 * total)


def test_masked_rows_stay_exactly_zero_after_local_training(trained):
    m = trained["method"]
    for c in trained["clients"]:
        state = m.personal[c]
        for name, rows in m.masks[c].items():
            b = state[name]
            assert torch.count_nonzero(b[rows.cpu()]) == 0, name
            assert torch.count_nonzero(b[~rows.cpu()]) > 0, name  # the others did train


def test_pl_never_leaves_the_client(trained):
    ctx, m = trained["ctx"], trained["method"]
    pl = set(m.pl_names)
    for updates, new in trained["rounds"]:
        for u in updates:
            assert not pl & set(u.delta)
        assert not pl & set(new)
        assert any(LORA_TAG in n for n in new)  # GAL LoRA is aggregated
    for n in pl:  # the shared (global) model still holds the PL init
        assert torch.equal(ctx.model.params[n], trained["init"][n])
    # bytes_up counts GAL LoRA + head only
    gal_head = sum(
        p.numel()
        for n, p in ctx.model.params.items()
        if ctx.model.group_of[n] == HEAD or (LORA_TAG in n and n not in pl)
    )
    train = [r for r in ctx.costs.records if r.kind == "train"]
    assert len(train) == 4 and all(r.bytes_up == 4 * gal_head for r in train)
    assert m.state_bytes() > 0


def test_personal_state_persists_across_rounds(trained):
    m = trained["method"]
    for c in trained["clients"]:
        r0, r1 = trained["after_r0"][c], m.personal[c]
        # round 1 started from the client's own round-0 PL (not the init): it moved further
        assert any(not torch.equal(r0[n], r1[n]) for n in r0)
        assert any(not torch.equal(r0[n], trained["init"][n].cpu()) for n in r0)


def _assert_weighted_mean(ctx, updates, new, w):
    for n, v in new.items():
        values = [ctx.global_values[n] + u.delta[n] for u in updates]
        expect = sum(wi * x for wi, x in zip(w, values, strict=True)) / w.sum()
        torch.testing.assert_close(v, expect, rtol=1e-5, atol=1e-7)


def test_gal_aggregate_is_weighted_by_the_pools_samples(trained):
    ctx, m, clients = trained["ctx"], trained["method"], trained["clients"]
    updates, new = trained["rounds"][1]
    w = np.array([sum(len(b) for b in m.pool(1, u.cid)) for u in updates], dtype=float)
    batches = np.array([u.num_batches for u in updates], dtype=float)
    assert batches.tolist() == [len(m.pool(1, u.cid)) for u in updates]  # one local epoch, no cap
    assert len(clients) == 2 and not np.isclose(w[0] / w.sum(), batches[0] / batches.sum())
    _assert_weighted_mean(ctx, updates, new, w)


def test_gal_aggregate_under_a_step_cap_keeps_data_size_weights():
    """Under ``fl.local_steps`` every client runs the same number of batches; the weights still follow
    each client's paced pool in samples (issue 26: batch-count weights turned uniform here)."""
    ctx = build_context(cfg(local_steps=1, rounds=4, batch_size=4))
    m = make_method("fibecfed", {"mask_ratio": 0}, ctx)
    m.setup()
    sizes = {c: sum(len(b) for b in m.pool(0, c)) for c in range(len(ctx.clients))}
    clients = sorted({max(sizes, key=sizes.get), min(sizes, key=sizes.get)})
    updates, new = run_round(ctx, m, 0, clients, [])
    assert [u.num_batches for u in updates] == [1, 1]  # the cap: uniform by batches run
    w = np.array([sizes[u.cid] for u in updates], dtype=float)
    assert w[0] != w[1]
    _assert_weighted_mean(ctx, updates, new, w)


def test_n_gal_all_means_no_personal_layers():
    ctx = build_context(cfg())
    m = make_method("fibecfed", {"n_gal": "all", "curriculum": False}, ctx)
    m.setup()
    assert m.pl == [] and m.pl_names == [] and m.masks == {}


def test_bad_n_gal_is_rejected():
    from fl_core.methods import validate_params

    with pytest.raises(ValueError, match="n_gal"):
        validate_params("fibecfed", {"n_gal": 3}, 2)


# -- end to end -------------------------------------------------------------------------------------
def test_run_cell_records_global_personal_metrics_and_setup_costs():
    res = run_cell(cfg(MASKED), progress=False)
    last = res.rounds[-1]
    for k in ("accuracy", "macro_f1", "personal_accuracy", "personal_macro_f1"):
        assert 0.0 <= last[k] <= 1.0
    assert last["personal_state_bytes"] > 0
    setup = [c for c in res.costs if c["kind"] == "setup"]
    assert sorted(c["client"] for c in setup) == list(range(FL.num_clients))
    assert all(c["flops_fwd"] > 0 and c["flops_bwd"] > 0 and c["samples"] > 0 for c in setup)
    # setup passes have their own memory peak (per-sample Fisher grads, AdamW trial epochs)
    train = [c for c in res.costs if c["kind"] == "train"]
    assert all(c["peak_memory_bytes"] > 0 for c in setup)
    assert max(c["peak_memory_bytes"] for c in setup) >= max(c["peak_memory_bytes"] for c in train)
    assert res.info["personalized"] is True and "personal state" in res.info["personal_eval"]


# -- under a local_steps cap (issue 12) ---------------------------------------------------------------
def _rows_per_round(ctx, method, rounds):
    from fl_core.client import local_batches

    return {
        cid: [set(np.concatenate(local_batches(ctx, method, t, cid)).tolist()) for t in range(rounds)]
        for cid in range(len(ctx.clients))
    }


def test_capped_rounds_draw_from_the_growing_pool_and_see_more_rows():
    T, cap = 6, 2
    ctx = build_context(cfg(rounds=T, local_steps=cap))
    m = make_method("fibecfed", {"mask_ratio": 0}, ctx)
    m.setup()
    rows = _rows_per_round(ctx, m, T)
    growth = {}
    for cid, per_round in rows.items():
        if len(m.order[cid]) <= cap:
            continue
        seen = [len(set().union(*per_round[: t + 1])) for t in range(T)]
        growth[cid] = seen
        assert seen[-1] > seen[0], (cid, seen)  # before: the same `cap` easiest batches every round
        for t in range(T):  # each round trains `cap` batches of the round's pool
            got = m.order_batches(t, cid, [])[:cap]
            pool = m.pool(t, cid)
            assert len(got) == cap and all(any(b is q for q in pool) for b in got)
            assert len(pool) == pacing_count(len(m.order[cid]), t, T)
    assert growth  # some client has more batches than the cap
    again = make_method("fibecfed", {"mask_ratio": 0}, ctx)
    again.order, again.difficulty = m.order, m.difficulty
    assert _rows_per_round(ctx, again, T) == rows  # seeded per (client, round)
    print("distinct rows seen per client after each round (cap 2):", growth)


def test_uncapped_rounds_keep_the_pool_in_curriculum_order(curriculum):
    ctx, m = curriculum
    for t in (0, 5):
        assert all(a is b for a, b in zip(m.order_batches(t, 0, []), m.pool(t, 0), strict=True))


def test_n_gal_rounds_half_up():
    from fl_core.methods.fibecfed import default_n_gal

    assert [default_n_gal(L) for L in (1, 2, 4, 6, 8, 12, 32)] == [1, 2, 3, 5, 6, 9, 24]
    assert default_n_gal(6) == 5  # 4.5 -> 5: one personal block on MiniLM-L6
    assert all(default_n_gal(L) == math.floor(0.75 * L + 0.5) for L in range(1, 40))


def test_run_info_states_the_rules_and_the_dropout_note(curriculum):
    from fl_core.methods.base import DROPOUT_NOTE

    ctx, m = curriculum
    info = m.run_info()
    assert info["dropout_note"] == DROPOUT_NOTE and "eval mode" in DROPOUT_NOTE
    assert info["n_gal_rule"].startswith("round(0.75*L) half up") and info["n_gal"] == 2
    assert "easiest first" in info["batches"]


def test_its_own_local_epochs():
    """``local_epochs: 2`` (the paper's) runs the paced pool twice per round whatever the grid's epochs."""
    ctx = build_context(cfg({"local_epochs": 2}, local_steps=None))
    assert ctx.cfg.fl.local_epochs == 2
    m = make_method("fibecfed", {"mask_ratio": 0, "local_epochs": 2}, ctx)
    m.setup()
    updates, _ = run_round(ctx, m, 0, [0], [])
    assert updates[0].num_batches == 2 * len(m.pool(0, 0))
    assert build_context(cfg()).cfg.fl.local_epochs == FL.local_epochs  # unset: the grid's
