import pytest

from fl_core.methods import METHODS, make_method
from fl_core.methods.base import TrainPlan
from fl_core.simulator import build_context
from tests.conftest import tiny_cell


@pytest.fixture(scope="module")
def ctx():
    return build_context(tiny_cell())


def _plans(ctx, name, rnd=0, clients=(0, 1, 2), **params):
    return make_method(name, params, ctx).configure_train(rnd, list(clients))


def test_full_head_topk_bottomk(ctx):
    L = ctx.model.num_blocks
    assert all(p.blocks == frozenset(range(L)) and p.head for p in _plans(ctx, "full").values())
    assert all(p.blocks == frozenset() and p.head for p in _plans(ctx, "head").values())
    assert all(p.blocks == frozenset({L - 1}) for p in _plans(ctx, "top_k", k=1).values())
    assert all(p.blocks == frozenset({0}) for p in _plans(ctx, "bottom_k", k=1).values())


def test_random_client_mode_is_seeded_and_varies(ctx):
    a = _plans(ctx, "random", rnd=0, clients=range(4), k=1)
    b = _plans(ctx, "random", rnd=0, clients=range(4), k=1)
    assert a == b
    draws = [
        p.blocks for r in range(10) for p in _plans(ctx, "random", rnd=r, clients=range(4), k=1).values()
    ]
    assert all(len(d) == 1 for d in draws) and len(set(draws)) == ctx.model.num_blocks


def test_random_server_mode_applies_one_draw_to_everyone(ctx):
    m = make_method("random", {"k": 1, "mode": "server"}, ctx)
    plans = m.configure_train(3, [0, 1, 2])
    assert len({p.blocks for p in plans.values()}) == 1
    assert plans[0].blocks == frozenset(range(ctx.model.num_blocks))  # clients train all (FedTLU's round)
    assert len(m.applied) == 1


def test_trainable_names_follow_the_plan(ctx):
    names = ctx.trainable_names(TrainPlan.of([1]))
    groups = {ctx.model.group_of[n] for n in names}
    assert groups == {1, "head"}
    assert ctx.first_grad(TrainPlan.of([1])) == 1
    assert ctx.first_grad(TrainPlan.of([])) == ctx.model.num_blocks


def test_every_registered_method_documents_itself():
    assert {"full", "head", "random", "top_k", "bottom_k"} <= set(METHODS)
    assert all(cls.__doc__ for cls in METHODS.values())
