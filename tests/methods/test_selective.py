"""Selective layer fine-tuning (Sun et al. 2024): the exact MILP, budgets, scoring, cost rows."""

from __future__ import annotations

import itertools
import logging
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import pytest
import torch

import fl_core.methods.selective as sel
from fl_core.methods import METHODS, make_method, validate_params
from fl_core.methods.selective import (
    draw_budgets,
    fill_to_budget,
    selection_objective,
    solve_selection,
    top_b_selection,
)
from fl_core.simulator import build_context, run_cell
from tests.conftest import tiny_cell


def _brute_force(scores, budgets, lam):
    n, num = scores.shape
    best = -np.inf
    for bits in itertools.product((0, 1), repeat=n * num):
        x = np.array(bits).reshape(n, num)
        if (x.sum(axis=1) <= budgets).all():
            best = max(best, selection_objective(x, scores, lam))
    return best


# -- the selection problem ------------------------------------------------------------------------
@pytest.mark.parametrize("seed", range(5))
def test_lambda_zero_is_per_client_top_b(seed):
    rng = np.random.default_rng(seed)
    scores = rng.random((6, 5))
    budgets = rng.integers(0, 6, 6)
    x = solve_selection(scores, budgets, 0.0)
    assert (x == top_b_selection(scores, budgets)).all()
    assert (x.sum(axis=1) == budgets).all()


@pytest.mark.parametrize("seed", range(6))
def test_milp_optimum_equals_brute_force(seed):
    rng = np.random.default_rng(100 + seed)
    scores = rng.random((3, 4))
    budgets = rng.integers(1, 4, 3)
    lam = [0.05, 0.2, 0.5][seed % 3]
    info = {}
    x = solve_selection(scores, budgets, lam, info=info)
    assert info["solver"] == "milp"
    assert (x.sum(axis=1) <= budgets).all()
    assert selection_objective(x, scores, lam) == pytest.approx(_brute_force(scores, budgets, lam), abs=1e-9)
    # and it is no worse than the greedy per-client choice
    assert (
        selection_objective(x, scores, lam)
        >= selection_objective(top_b_selection(scores, budgets), scores, lam) - 1e-9
    )


def test_penalty_changes_the_choice_on_a_small_instance():
    # two clients prefer different blocks; a penalty makes them agree on the better shared one (1.9 vs 1.8)
    scores = np.array([[1.0, 0.9, 0.0], [0.8, 1.0, 0.0]])
    assert solve_selection(scores, [1, 1], 0.0).tolist() == [[True, False, False], [False, True, False]]
    agree = solve_selection(scores, [1, 1], 0.5)
    assert agree[0].tolist() == agree[1].tolist() == [False, True, False]  # both on block 1: 1.9 > 1.8 - 0


def test_large_lambda_makes_every_client_choose_the_same_blocks():
    rng = np.random.default_rng(3)
    scores = rng.random((5, 6))
    x = solve_selection(scores, np.full(5, 2), 100.0)
    assert all((row == x[0]).all() for row in x)
    assert x[0].sum() == 2
    assert set(np.flatnonzero(x[0])) == set(np.argsort(-scores.sum(axis=0))[:2])  # the best shared pair


def test_fill_to_budget_pads_with_the_best_blocks_and_never_exceeds():
    rng = np.random.default_rng(5)
    scores = rng.random((4, 6))
    budgets = np.array([1, 2, 3, 4])
    x = solve_selection(scores, budgets, 100.0)  # a huge penalty: the high-budget clients under-use it
    assert (x.sum(axis=1) < budgets).any()
    filled = fill_to_budget(x, scores, budgets)
    assert (filled.sum(axis=1) == budgets).all() and (filled >= x).all()
    for i in range(4):  # the added blocks are the client's best unselected ones
        added = np.flatnonzero(filled[i] & ~x[i])
        rest = np.flatnonzero(~filled[i])
        assert len(rest) == 0 or len(added) == 0 or scores[i, added].min() >= scores[i, rest].max()


@pytest.mark.parametrize("lam", [0.0, 0.1, 1.0, 10.0])
def test_no_client_exceeds_its_budget(lam):
    rng = np.random.default_rng(int(lam * 10))
    for _ in range(5):
        scores = rng.random((7, 6))
        budgets = rng.integers(0, 8, 7)  # includes 0 and budgets above L
        x = solve_selection(scores, budgets, lam)
        assert (x.sum(axis=1) <= np.minimum(budgets, 6)).all()


@pytest.mark.parametrize("how", ["raise", "no_solution"])
def test_fallback_when_the_solver_fails(monkeypatch, caplog, how):
    def broken(*a, **k):
        if how == "raise":
            raise ValueError("boom")
        return type("R", (), {"x": None, "status": 4, "message": "failed", "success": False})()

    monkeypatch.setattr(sel, "milp", broken)
    rng = np.random.default_rng(0)
    scores, budgets = rng.random((4, 5)), np.array([1, 2, 3, 0])
    info = {}
    with caplog.at_level(logging.WARNING, logger="fl_core.methods.selective"):
        x = solve_selection(scores, budgets, 1.0, info=info)
    assert info["solver"] == "fallback"
    assert (x == top_b_selection(scores, budgets)).all()
    assert any("falling back" in r.getMessage() for r in caplog.records)


def test_hetero_budgets_are_seeded_and_in_range():
    a = draw_budgets(np.random.default_rng(0), 200, 1, 4, 1.0, 1.0)
    b = draw_budgets(np.random.default_rng(0), 200, 1, 4, 1.0, 1.0)
    assert (a == b).all() and a.min() >= 1 and a.max() <= 4
    assert set(a.tolist()) == {1, 2, 3, 4}
    counts = np.bincount(a, minlength=5)[1:]
    assert counts[0] > counts[-1]  # half-normal from b_min: small budgets are the most common


def test_params_are_validated():
    assert {"selective", "rgn", "snr"} <= set(METHODS)
    validate_params("selective", {"b": 2}, 2)
    with pytest.raises(ValueError, match="b=3"):
        validate_params("selective", {"b": 3}, 2)
    with pytest.raises(ValueError, match="b_max"):
        validate_params("selective", {"budget": "hetero", "b_min": 1, "b_max": 3}, 2)
    with pytest.raises(ValueError):
        validate_params("selective", {"score_batches": 0}, 2)
    with pytest.raises(ValueError):
        validate_params("rgn", {"lam": 0.1}, 2)  # no penalty in the heuristic baselines
    with pytest.raises(ValueError):
        validate_params("selective", {"score": "fisher"}, 2)


# -- the method on tiny-bert ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def ctx():
    return build_context(tiny_cell())


def test_scoring_pass_changes_nothing_and_is_costed(ctx):
    m = make_method("selective", {"b": 1}, ctx)
    before = {n: p.detach().clone() for n, p in ctx.model.params.items()}
    n_rows = len(ctx.costs.records)
    scores = m.score_client(0, 1)
    assert scores.shape == (ctx.model.num_blocks,) and np.isfinite(scores).all() and (scores > 0).all()
    assert all(torch.equal(before[n], p) for n, p in ctx.model.params.items())  # no optimizer step
    assert all(p.grad is None and not p.requires_grad for p in ctx.model.params.values())
    rec = ctx.costs.records[n_rows]
    assert rec.kind == "score" and rec.round == 0 and rec.client == 1
    assert rec.samples == ctx.num_samples(1)  # one full local epoch by default
    assert rec.bytes_up == 4 * ctx.model.num_blocks and rec.flops_fwd > 0 and rec.flops_bwd > 0
    # deterministic, and score_batches caps the pass
    assert np.allclose(m.score_client(0, 1), scores)
    m1 = make_method("selective", {"b": 1, "score_batches": 1}, ctx)
    m1.score_client(0, 1)
    assert ctx.costs.records[-1].samples == ctx.cfg.fl.batch_size


@pytest.mark.parametrize(
    "params",
    [
        {"b": 1},
        {"budget": "hetero", "b_min": 0, "b_max": 2, "b_mean": 1.0},
        {"score": "rgn", "b": 1},
        {"score": "snr", "budget": "hetero", "b_min": 1, "b_max": 2},
    ],
)
def test_plans_respect_budgets(ctx, params):
    params = {**params, "score_batches": 1}  # keep it fast: one batch per scoring pass
    m = make_method("selective", params, ctx)
    clients = list(range(ctx.cfg.fl.num_clients))
    for rnd in range(2):
        plans = m.configure_train(rnd, clients)
        for c, p in plans.items():
            assert len(p.blocks) <= m.budgets[c] == p.info["budget"]
            assert p.head
    if params.get("budget") == "hetero":
        again = make_method("selective", params, ctx)
        assert (again.budgets == m.budgets).all()  # drawn once, seeded
    assert m.history[-1]["round"] == 1 and len(m.history[-1]["scores"]) == len(clients)


def test_select_every_reuses_the_selection_without_scoring(ctx):
    m = make_method("selective", {"b": 1, "select_every": 2, "score_batches": 1}, ctx)
    n_rows = len(ctx.costs.records)
    p0 = m.configure_train(0, [0, 1])
    p1 = m.configure_train(1, [0, 1, 2])
    assert len(ctx.costs.records) - n_rows == 2  # scored at round 0 only
    assert p1[0].blocks == p0[0].blocks and p1[1].blocks == p0[1].blocks
    assert len(p1[2].blocks) == 1  # never scored: the most chosen block
    assert [h["round"] for h in m.history] == [0]


def test_aliases_and_fixed_modes(ctx):
    assert make_method("rgn", {"b": 1}, ctx).mode == "rgn"
    assert make_method("snr", {"b": 1}, ctx).mode == "snr"
    het = {"budget": "hetero", "b_min": 0, "b_max": 2}
    budgets = [make_method(n, het, ctx).budgets for n in ("selective", "rgn", "snr")]
    assert all((b == budgets[0]).all() for b in budgets)  # one draw per seed, shared by the baselines"
    L = ctx.model.num_blocks
    top = make_method("selective", {"score": "top", "b": 1}, ctx).configure_train(0, [0, 1])
    bottom = make_method("selective", {"score": "bottom", "b": 1}, ctx).configure_train(0, [0, 1])
    assert all(p.blocks == frozenset({L - 1}) for p in top.values())
    assert all(p.blocks == frozenset({0}) for p in bottom.values())


def test_run_cell_records_score_cost_rows():
    res = run_cell(tiny_cell("selective", b=1, lam=0.1, score_batches=2), progress=False)
    assert res.status == "ok"
    score_rows = [r for r in res.costs if r["kind"] == "score"]
    train_rows = [r for r in res.costs if r["kind"] == "train"]
    assert {(r["round"], r["client"]) for r in score_rows} == {(r["round"], r["client"]) for r in train_rows}
    assert all(r["bytes_up"] == 4 * res.info["num_blocks"] and r["flops_bwd"] > 0 for r in score_rows)
    assert all(r["samples"] == 2 * 8 and r["bytes_down"] == 0 for r in score_rows)  # 2 batches of 8
    # the scoring pass has its own memory peak (grads of every block), in the cost table's column
    assert all(r["peak_memory_bytes"] > 0 for r in score_rows)
    assert max(r["peak_memory_bytes"] for r in score_rows) > min(r["peak_memory_bytes"] for r in train_rows)
    assert all(len(s["blocks"]) <= 1 for s in res.selections)


# -- fill_budget (issue 12): the official find_selection_set pads up to the budget -----------------
def _fixed_budget_method(fill: bool | None, lam: float, scores: np.ndarray, budgets: list[int]):
    """A Selective on a stand-in context (6 blocks, 5 clients) whose scoring pass returns ``scores``."""
    from types import SimpleNamespace

    from fl_core.methods.selective import Selective

    n, num = scores.shape
    ctx = SimpleNamespace(
        cfg=SimpleNamespace(fl=SimpleNamespace(num_clients=n)),
        model=SimpleNamespace(num_blocks=num),
        rng=lambda *k: np.random.default_rng(0),
    )
    params = {"lam": lam} if fill is None else {"lam": lam, "fill_budget": fill}
    m = Selective(validate_params("selective", params, num), ctx)
    m.budgets = np.asarray(budgets)
    m.score_client = lambda rnd, cid: scores[cid]
    return m


@pytest.mark.parametrize("lam", [0.1, 1.0])
def test_default_fills_every_budget_and_unfilled_is_the_ablation(lam):
    budgets = [1, 4, 2, 3, 1]
    scores = np.random.default_rng(3).random((5, 6)) ** 4  # heavy-tailed, as gradient norms are
    trained = {}
    for fill in (None, False):  # None: the default
        m = _fixed_budget_method(fill, lam, scores, budgets)
        plans = m.configure_train(0, list(range(5)))
        trained[fill] = [len(plans[c].blocks) for c in range(5)]
    assert trained[None] == budgets  # the default trains each client's full budget
    assert sum(trained[False]) < sum(budgets)  # the raw MILP leaves budget unused
    assert all(a <= b for a, b in zip(trained[False], budgets, strict=True))
    print(f"lam={lam}: blocks trained per client, unfilled {trained[False]} -> default {trained[None]}")
