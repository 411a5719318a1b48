"""Natural partitions: each client a fixed set of real sources (e.g. a movie's reviews), seeded, with
personalized test rows drawn from the client's own sources, disjoint from its training rows."""

from __future__ import annotations

import numpy as np
import pytest

from fl_core.config import GridConfig, natural_key
from fl_core.data.partition import PartitionError, natural_client_test, partition
from fl_core.simulator import build_context
from tests.conftest import TINY_DATA, TINY_FL, tiny_cell


def _groups(n_sources: int = 30, seed: int = 1) -> np.ndarray:
    sizes = np.random.default_rng(seed).integers(1, 9, n_sources)
    return np.repeat(np.arange(n_sources), sizes)


def test_client_is_a_set_of_whole_sources_seeded():
    g = _groups()
    labels = np.zeros(len(g), dtype=np.int64)
    parts = partition(labels, 7, "natural:movie", seed=3, groups=g)
    assert sorted(np.concatenate(parts).tolist()) == list(range(len(g)))  # every row, once
    owners = [{int(x) for x in np.unique(g[p])} for p in parts]
    assert all(a.isdisjoint(b) for i, a in enumerate(owners) for b in owners[i + 1 :])  # whole sources
    assert sorted(len(o) for o in owners) in ([4, 4, 4, 4, 4, 5, 5], [4, 4, 4, 4, 5, 5, 4])  # 30 over 7
    again = partition(labels, 7, "natural:movie", seed=3, groups=g)
    assert all(np.array_equal(a, b) for a, b in zip(parts, again, strict=True))
    other = partition(labels, 7, "natural:movie", seed=4, groups=g)
    assert any(not np.array_equal(a, b) for a, b in zip(parts, other, strict=True))
    one_each = partition(labels, 30, "natural:movie", seed=0, groups=g)
    assert all(len(np.unique(g[p])) == 1 for p in one_each)  # as many clients as sources: one each


def test_more_clients_than_sources_names_the_fix():
    g = _groups(5)
    with pytest.raises(PartitionError, match="lower fl.num_clients to at most 5"):
        partition(np.zeros(len(g), dtype=np.int64), 6, "natural:movie", seed=0, groups=g)


def test_personal_test_rows_come_from_the_clients_own_sources():
    train_g, test_g = np.array([0, 0, 1, 2, 2, 3]), np.array([3, 0, 2, 2, 1, 4])
    clients = [np.array([0, 1]), np.array([2, 3, 4]), np.array([5])]
    got = natural_client_test(train_g, test_g, clients)
    assert [x.tolist() for x in got] == [[1], [2, 3, 4], [0]]  # source 4 has no training rows: no client


def test_grid_partitions_per_dataset_and_natural_key():
    g = GridConfig(
        datasets=["rotten_tomatoes", "bbc_news"],
        alphas=[1.0],
        partitions={"rotten_tomatoes": ["natural:movie_name", 0.3]},
        methods=[{"name": "full"}],
        seeds=[0],
    )
    assert [(c.dataset, c.alpha) for c in g.cells()] == [
        ("rotten_tomatoes", "natural:movie_name"),
        ("rotten_tomatoes", 0.3),
        ("bbc_news", 1.0),
    ]
    assert natural_key("natural:movie_name") == "movie_name" and natural_key(0.3) is None
    assert natural_key("iid") is None


def test_rotten_tomatoes_by_movie_end_to_end():
    """The packaged corpus: clients are movies, the split equals the Dirichlet cells' split, and each
    client's personalized test rows are held-out reviews of its own movies."""
    base = tiny_cell("full", alpha=1.0).model_copy(update={"dataset": "rotten_tomatoes"})
    data = TINY_DATA.model_copy(update={"max_train_samples": None, "max_test_samples": None})
    fl = TINY_FL.model_copy(update={"num_clients": 50})
    cell = base.model_copy(update={"alpha": "natural:movie_name", "fl": fl, "data": data})
    ctx = build_context(cell)
    dirichlet = build_context(base.model_copy(update={"fl": fl, "data": data}))
    assert ctx.splits.split_hash == dirichlet.splits.split_hash
    assert np.array_equal(ctx.splits.train.labels, dirichlet.splits.train.labels)
    tg, sg = ctx.splits.train.groups, ctx.splits.test.groups
    assert len(np.unique(tg)) > 400  # ~500 movies
    for p, t in zip(ctx.clients, ctx.client_test, strict=True):
        assert len(t) and set(sg[t].tolist()) <= set(tg[p].tolist())
    # a real skew: the clients' fresh shares spread far more than an IID split would
    share = [ctx.splits.train.labels[p].mean() for p in ctx.clients]
    assert np.ptp(share) > 0.3


def test_source_columns_are_validated_before_torch():
    from fl_core.config import ConfigError
    from fl_core.data.sources import DATASETS
    from fl_core.dataset_names import SOURCE_COLUMNS
    from fl_core.validate import parse_grid

    for name, load in DATASETS.items():  # the torch-free declaration matches the loaders
        assert set(load().column_names) - {"text", "label"} == SOURCE_COLUMNS[name]
    raw = dict(datasets=["bbc_news"], alphas=["natural:movie_name"], methods=[{"name": "full"}], seeds=[0])
    with pytest.raises(ConfigError, match="alphas: 'natural:movie_name': dataset 'bbc_news' has no source"):
        parse_grid(raw)
