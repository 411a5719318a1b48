"""tiny (CAFF, Pfeiffer et al. 2024) and lora_budget: budgets, sitting out, frozen prefix,
per-block FedAvg, the architecture choice, the LoRA rank under a budget."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import itertools  # noqa: E402

import pytest  # noqa: E402
import torch  # noqa: E402

from fl_core.budget_model import RESOURCES, Budget, DoesNotFit, arch_of, full_cost, step_cost  # noqa: E402
from fl_core.client import run_client  # noqa: E402
from fl_core.config import DataConfig, FLConfig, MethodSpec, RunConfig  # noqa: E402
from fl_core.methods import make_method  # noqa: E402
from fl_core.methods.tiny import ArchitectureMismatch, Tiny, choose_architecture  # noqa: E402
from fl_core.models import EMB, HEAD  # noqa: E402
from fl_core.simulator import build_context, run_cell  # noqa: E402

FL = FLConfig(max_len=16, num_clients=4, clients_per_round=2, rounds=2, local_steps=2, batch_size=8)
DATA = DataConfig(max_train_samples=200, max_test_samples=50)
B, S = FL.batch_size, FL.max_len
# tiny-bert (L = 2) at batch 8, seq 16, as fractions of its full fine-tuning FLOPs:
# head only 0.336, last block 0.668, both 1.0  ->  with constrain [flops]:
SIT, T1, T2 = 0.2, 0.7, 1.0


def cell(method: str, seed: int = 0, fl: FLConfig = FL, **params) -> RunConfig:
    return RunConfig(
        dataset="bbc_news",
        alpha=1.0,
        method=MethodSpec(name=method, params=params),
        seed=seed,
        model="tiny-bert",
        fl=fl,
        data=DATA,
    )


def tiny(ctx, **params):
    m = make_method("tiny", {"candidates": ["tiny-bert"], "constrain": ["flops"], **params}, ctx)
    m.setup()
    return m


@pytest.fixture(scope="module")
def ctx():
    return build_context(cell("full"))


def _hetero_seed(levels: list[float], need: set[float]) -> int:
    """A seed whose device draw contains every level in ``need`` (the draw is seeded, not order-dependent)."""
    from fl_core.methods.tiny import TinyParams, client_levels

    for seed in range(50):
        if need <= set(
            client_levels(cell("tiny", seed=seed), TinyParams(budget="hetero", levels=tuple(levels)))
        ):
            return seed
    raise AssertionError("no seed mixes the levels")


def test_the_fractions_above_match_the_budget_model():
    a = arch_of("tiny-bert", 5)
    full = full_cost(a, B, S)
    frac = [step_cost(a, B, S, t=t).flops / full.flops for t in range(3)]
    assert SIT < frac[0] < T1 and frac[1] <= T1 < frac[2] <= T2


def test_depth_is_monotone_in_the_budget():
    archs = {n: arch_of(n, 5) for n in ("tiny-bert", "minilm-l2", "minilm-l6")}
    fracs = [0.05, 0.125, 0.25, 0.4, 0.5, 0.75, 1.0]
    for name, arch in archs.items():
        full = full_cost(arch, B, S)
        for res in (RESOURCES, ("memory",), ("flops",), ("upload",)):
            budgets = [Budget.fraction_of(full, f, res) for f in fracs]
            t = choose_architecture({name: arch}, budgets, B, S).t[name]
            t = [-1 if x is None else x for x in t]
            assert t == sorted(t), (name, res, t)
            assert t[-1] == arch.num_blocks  # the whole budget fits full fine-tuning


def test_homogeneous_budget_gives_every_device_the_same_suffix(ctx):
    m = tiny(ctx, budget=T1)
    assert m.t == [1] * FL.num_clients
    plans = m.configure_train(0, [0, 1, 2])
    L = ctx.model.num_blocks
    assert all(p.blocks == frozenset({L - 1}) and p.head and not p.info["sit_out"] for p in plans.values())
    assert all(p.info["flops_frac"] <= T1 for p in plans.values())
    assert m.never_trained_below() == L - 1


def _hetero_setup(levels):
    """A set-up ``tiny`` on tiny-bert whose devices draw from ``levels`` (a seed where both occur)."""
    seed = _hetero_seed(levels, set(levels))
    cfg = cell(
        "tiny", seed=seed, budget="hetero", levels=levels, candidates=["tiny-bert"], constrain=["flops"]
    )
    ctx = build_context(cfg)
    m = make_method("tiny", cfg.method.params, ctx)
    m.setup()
    return cfg, ctx, m


def test_a_device_that_fits_nothing_sits_out():
    cfg, ctx, m = _hetero_setup([SIT, T2])
    out = [c for c, lvl in enumerate(m.devices.levels) if lvl == SIT]
    assert out and all(m.t[c] is None for c in out) and m.summary["sit_out"] == out
    plan = m.configure_train(0, out)[out[0]]
    assert plan.blocks == frozenset() and not plan.head and plan.info["sit_out"]
    assert ctx.trainable_names(plan) == []
    ctx.global_values = ctx.model.state(list(ctx.model.params))
    update = run_client(ctx, m, 0, out[0], plan)
    assert update.delta == {} and ctx.costs.records[-1].bytes_up == 0 and ctx.costs.records[-1].flops_bwd == 0
    # the whole run: sitting-out devices show up in the selections with nothing trained
    res = run_cell(cfg, progress=False)
    assert res.status == "ok"
    for s in res.selections:
        assert (s["blocks"] == [] and not s["head"]) == (s["client"] in out)
    ups = {(c["round"], c["client"]): c["bytes_up"] for c in res.costs if c["kind"] == "train"}
    assert not any(c in out for _, c in ups)  # as the docstring says: the simulator skips them (no pass)
    full_up = full_cost(ctx.model.arch, B, S).upload
    assert all(v == (0 if c in out else full_up) for (_, c), v in ups.items())  # analytic upload == sent


def test_nothing_fits_raises_does_not_fit(ctx):
    with pytest.raises(DoesNotFit, match="no device fits"):
        tiny(ctx, budget=SIT)


def test_frozen_prefix_gets_no_gradient(ctx):
    m = tiny(ctx, budget=T1)
    L = ctx.model.num_blocks
    plan = m.configure_train(0, [0])[0]
    seen: list[set[str]] = []
    m.after_backward = lambda cid, p: seen.append(
        {n for n, q in ctx.model.params.items() if q.grad is not None}
    )
    ctx.global_values = ctx.model.state(ctx.trainable_names(plan))
    run_client(ctx, m, 0, 0, plan)
    ctx.model.load(ctx.global_values)
    assert seen
    group = ctx.model.group_of
    trained = {n for n, g in group.items() if g == HEAD or (isinstance(g, int) and g >= L - 1)}
    for grads in seen:
        assert grads == trained
        assert not any(group[n] == EMB or (isinstance(group[n], int) and group[n] < L - 1) for n in grads)
    for q in ctx.model.params.values():
        q.grad = None


def test_per_block_fedavg_over_the_devices_that_trained_each_block():
    cfg, ctx, m = _hetero_setup([T1, T2])
    deep = next(c for c, t in enumerate(m.t) if t == 2)
    shallow = next(c for c, t in enumerate(m.t) if t == 1)
    clients = sorted([deep, shallow])
    plans = m.configure_train(0, clients)
    model = ctx.model
    before = model.state(list(model.params))
    ctx.global_values = model.state(sorted({n for c in clients for n in ctx.trainable_names(plans[c])}))
    updates = []
    for c in clients:
        updates.append(run_client(ctx, m, 0, c, plans[c]))
        model.load(ctx.global_values)
    new = m.aggregate(0, updates)
    n = {u.cid: float(u.num_samples) for u in updates}
    d = {u.cid: u.delta for u in updates}
    for name, value in new.items():
        g = model.group_of[name]
        if g == 0:  # only the deep device trained block 0: its own update, not averaged with zeros
            torch.testing.assert_close(value, before[name] + d[deep][name])
        else:  # block 1 and head: sample-weighted mean over both
            mean = (n[deep] * d[deep][name] + n[shallow] * d[shallow][name]) / (n[deep] + n[shallow])
            torch.testing.assert_close(value, before[name] + mean)
    assert {model.group_of[k] for k in new} == {0, 1, HEAD}
    # a block nobody trains stays bit-identical through a whole run
    ctx2 = build_context(cell("full"))
    m2 = tiny(ctx2, budget=T1)
    plans = m2.configure_train(0, [0, 1])
    ctx2.global_values = ctx2.model.state(sorted({n for c in (0, 1) for n in ctx2.trainable_names(plans[c])}))
    before = ctx2.model.state(ctx2.model.names_in(0))
    ups = []
    for c in (0, 1):
        ups.append(run_client(ctx2, m2, 0, c, plans[c]))
        ctx2.model.load(ctx2.global_values)
    new = m2.aggregate(0, ups)
    ctx2.model.load(new)
    assert not any(ctx2.model.group_of[k] == 0 for k in new)
    assert all(torch.equal(ctx2.model.params[k], v) for k, v in before.items())


def test_architecture_choice_is_the_largest_mean_depth_ties_to_the_larger():
    archs = {n: arch_of(n, 5) for n in ("minilm-l2", "minilm-l4", "minilm-l6")}
    b, s = 16, 64
    full = full_cost(archs["minilm-l6"], b, s)

    def choose(f, res=RESOURCES):
        return choose_architecture(archs, [Budget.fraction_of(full, f, res)] * 3, b, s)

    half = choose(0.5)  # l2 and l4 both train 2 blocks, l6 one: the tie goes to l4
    assert half.t["minilm-l2"] == half.t["minilm-l4"] and half.t["minilm-l6"][0] < half.t["minilm-l4"][0]
    assert half.name == "minilm-l4"
    flops = choose(0.25, ["flops"])  # forward of l6 alone is a third of its full cost: l6 sits out
    assert flops.t["minilm-l6"] == [None] * 3 and flops.score["minilm-l6"] == -1
    assert flops.name == "minilm-l2" and flops.t["minilm-l2"] == [1] * 3
    assert choose(1.0).name == "minilm-l6"
    assert not choose(0.01).anyone_fits
    # heterogeneous devices: the mean decides
    mixed = choose_architecture(archs, [Budget.fraction_of(full, f) for f in (0.125, 0.25, 0.5)], b, s)
    assert mixed.score == {n: sum(-1 if x is None else x for x in ts) / 3 for n, ts in mixed.t.items()}
    assert mixed.name == max(mixed.score, key=lambda n: (mixed.score[n], archs[n].num_blocks))


def test_architecture_mismatch_names_the_model_to_set(ctx):
    with pytest.raises(ArchitectureMismatch, match="model: minilm-l4"):
        make_method("tiny", {"candidates": ["tiny-bert", "minilm-l4"], "budget": 1.0}, ctx).setup()
    p = Tiny.Params(candidates=("tiny-bert", "minilm-l4"), budget=1.0)
    assert Tiny.select_model(p, cell("tiny"), num_labels=ctx.model.arch.num_labels) == "minilm-l4"


def test_successive_window_moves_from_input_to_output():
    fl = FLConfig(**{**FL.model_dump(), "rounds": 3})
    ctx = build_context(cell("full", fl=fl))
    a = ctx.model.arch
    full = full_cost(a, B, S)
    f = step_cost(a, B, S, blocks=[0]).flops / full.flops  # window of one block at the bottom
    m = tiny(ctx, budget=f, schedule="successive")
    assert m.t == [1] * FL.num_clients
    windows = [m.configure_train(r, [0])[0].blocks for r in range(3)]
    assert windows[0] == {0} and windows[-1] == {a.num_blocks - 1}
    assert all(min(x) <= min(y) for x, y in itertools.pairwise(windows))
    assert m.never_trained_below() == 0


def _lora_frac(ctx, r: int) -> float:
    a = ctx.model.arch
    return step_cost(a, B, S, r=r).upload / full_cost(a, B, S).upload


def test_lora_budget_picks_the_largest_fitting_rank():
    ctx = build_context(cell("full"))
    f = (_lora_frac(ctx, 8) + _lora_frac(ctx, 16)) / 2  # rank 8 fits the upload budget, 16 does not
    m = make_method("lora_budget", {"budget": f, "constrain": ["upload"]}, ctx)
    m.setup()
    assert m.rank == 8
    a_names = [n for n in ctx.model.params if ".lora_A." in n]
    assert a_names and all(ctx.model.params[n].shape[0] == 8 for n in a_names)
    plans = m.configure_train(0, [0, 1])
    assert all(p.only == "lora_" and p.info["rank"] == 8 for p in plans.values())
    names = ctx.trainable_names(plans[0])
    assert (
        4 * ctx.model.numel(names)
        == step_cost(ctx.model.arch, B, S, r=8).upload
        <= f * full_cost(ctx.model.arch, B, S).upload
    )


def test_lora_budget_records_which_memory_figure_decided():
    ctx = build_context(cell("full"))
    m = make_method("lora_budget", {"budget": 1.0, "constrain": ["memory"], "ranks": [4, 2]}, ctx)
    m.setup()
    info = m.run_info()
    assert info["memory_fit"] == "measured" and info["rank"] == 4 and info["rank_analytic"] == 4
    assert info["memory_bytes"]["measured"] > 0 and info["memory_bytes"]["analytic"] > 0
    assert "eval mode" in info["dropout_note"]
    ctx2 = build_context(cell("full"))
    m2 = make_method("lora_budget", {"budget": 1.0, "constrain": ["upload"], "ranks": [4]}, ctx2)
    m2.setup()
    assert m2.run_info()["memory_fit"] == "analytic (memory not constrained)"


def test_lora_budget_that_fits_no_rank_is_skipped_by_the_sweep():
    from fl_core.cell import execute_cell

    ctx = build_context(cell("full"))
    with pytest.raises(DoesNotFit, match="no rank"):
        make_method("lora_budget", {"budget": 0.5 * _lora_frac(ctx, 1), "constrain": ["upload"]}, ctx).setup()
    result, _, _ = execute_cell(cell("lora_budget", budget=0.01), progress=False)
    assert result["status"] == "skipped" and "lora_budget: no rank" in result["reason"]


def test_params_are_validated():
    from pydantic import ValidationError

    with pytest.raises(ValidationError):
        Tiny.Params(budget=1.5)
    with pytest.raises(ValidationError):
        Tiny.Params(constrain=["memory", "memory"])
    with pytest.raises(ValueError, match="unknown model"):
        Tiny.check(Tiny.Params(candidates=("no-such-model",)), 2)
    from fl_core.methods.tiny import LoraBudget

    with pytest.raises(ValueError, match="target_modules"):
        LoraBudget.check(LoraBudget.Params(target_modules=("dense",)), 2)
