"""RunContext batching: seeded shuffles, optionally length-bucketed."""

from __future__ import annotations

import numpy as np
import pytest

from fl_core.context import RunContext
from fl_core.data.splits import Splits, TokenizedData

from .conftest import tiny_cell


def _ctx(buckets: int, n: int = 200, seed: int = 0) -> RunContext:
    rng = np.random.default_rng(7)
    lengths = rng.integers(4, 64, n).astype(np.int32)
    data = TokenizedData(np.zeros((n, 64), np.int32), lengths, rng.integers(0, 2, n))
    cell = tiny_cell(seed=seed)
    cfg = cell.model_copy(
        update={"fl": cell.fl.model_copy(update={"length_buckets": buckets, "batch_size": 16})}
    )
    return RunContext(
        cfg=cfg,
        model=None,
        splits=Splits(data, data, ["a", "b"], "h"),  # type: ignore[arg-type]
        clients=[np.arange(0, n, 2), np.arange(1, n, 2)],
        device=None,
    )  # type: ignore[arg-type]


def _padded(ctx: RunContext, batches: list[np.ndarray]) -> int:
    return sum(len(b) * int(ctx.splits.train.lengths[b].max()) for b in batches)


@pytest.mark.parametrize("buckets", [0, 4])
def test_every_row_of_the_client_once_and_seeded(buckets):
    ctx = _ctx(buckets)
    batches = ctx.client_batches(1, rnd=3)
    rows = np.concatenate(batches)
    assert sorted(rows.tolist()) == ctx.clients[1].tolist()
    assert all(len(b) == 16 for b in batches[:-1]) and len(batches[-1]) <= 16  # only the last may be short
    again = ctx.client_batches(1, rnd=3)
    assert all(np.array_equal(a, b) for a, b in zip(batches, again, strict=True))
    other = ctx.client_batches(1, rnd=4)
    assert not all(np.array_equal(a, b) for a, b in zip(batches, other, strict=False))


def test_bucketing_cuts_padding_and_keeps_batches_random():
    plain, bucketed = _ctx(0), _ctx(4)
    pad_plain = np.mean([_padded(plain, plain.client_batches(0, r)) for r in range(20)])
    pad_bucket = np.mean([_padded(bucketed, bucketed.client_batches(0, r)) for r in range(20)])
    assert pad_bucket < 0.8 * pad_plain
    # the first batch (what a local-step cap keeps) is not always the shortest or the longest rows
    first = [int(bucketed.splits.train.lengths[bucketed.client_batches(0, r)[0]].max()) for r in range(20)]
    assert len(set(first)) > 3


def test_one_batch_per_bucket_is_plain_shuffle():
    a, b = _ctx(0), _ctx(1)
    assert all(
        np.array_equal(x, y) for x, y in zip(a.client_batches(0, 2), b.client_batches(0, 2), strict=True)
    )


def test_trained_share_is_computed_once_per_plan(monkeypatch):
    from fl_core.methods.base import TrainPlan
    from fl_core.simulator import build_context

    ctx = build_context(tiny_cell("full"))
    names = ctx.trainable_names(TrainPlan.of([1]))
    calls = []
    real = ctx._trained_share
    monkeypatch.setattr(ctx, "_trained_share", lambda n: calls.append(n) or real(n))
    first = ctx.trained_share(names)
    assert ctx.trained_share(list(names)) is first and len(calls) == 1
    assert first == [0.0, 1.0]  # block 1 of the 2-block model, fully trained
    assert ctx.trained_share(ctx.trainable_names(TrainPlan.of([0, 1]))) == [1.0, 1.0] and len(calls) == 2


def test_prefix_cache_fills_only_splits_read_more_than_once():
    from fl_core.methods import make_method
    from fl_core.simulator import build_context, run_round
    from fl_core.visits import evaluations, expected_visits

    assert [evaluations(6, 3), evaluations(7, 3), evaluations(2, 1)] == [2, 3, 2]
    short = tiny_cell("top_k", k=1)  # 2 rounds x 2 clients x 2 steps x 8 rows over 200 rows: 0.32
    long = short.model_copy(update={"fl": short.fl.model_copy(update={"rounds": 20, "local_steps": 4})})
    for cell, cached in ((short, False), (long, True)):
        ctx = build_context(cell)
        method = make_method("top_k", {"k": 1}, ctx)
        ctx.enable_prefix_cache(method.never_trained_below())
        want = cell.fl.rounds * 2 * np.mean([min(cell.fl.local_steps * 8, len(c)) for c in ctx.clients]) / 200
        assert expected_visits(ctx, "train") == pytest.approx(want)
        run_round(ctx, method, 0, [0, 1], [])
        assert ("train" in ctx.prefix_cache.store) is cached
        assert expected_visits(ctx, "test") == cell.fl.rounds and ctx.prefix_cache.worth(
            "test"
        )  # eval_every 1
