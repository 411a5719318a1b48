"""Validation split carved from train, per-method / tuned learning rates, hash compatibility."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

from fl_core.config import ConfigError, DataConfig
from fl_core.data.splits import Splits, TokenizedData
from fl_core.data.val import carve_val
from fl_core.simulator import build_context, run_cell
from fl_core.validate import parse_grid
from tests.conftest import tiny_cell, tiny_grid_dict


def _splits(n: int = 100) -> Splits:
    y = np.arange(n) % 4
    data = TokenizedData(np.arange(n)[:, None].astype(np.int32), np.ones(n, np.int32), y)
    return Splits(
        data, TokenizedData(np.zeros((10, 1), np.int32), np.ones(10, np.int32), y[:10]), list("abcd"), "h"
    )


def test_val_rows_come_from_train_stratified_and_seeded():
    s = _splits()
    out = carve_val(s, 0.2, seed=3)
    tr, va = out.train.ids[:, 0], out.val.ids[:, 0]
    assert len(va) == 20 and len(tr) == 80 and not set(tr) & set(va) and set(tr) | set(va) == set(range(100))
    assert np.bincount(out.val.labels).tolist() == [5, 5, 5, 5]  # stratified
    assert out.test is s.test
    assert np.array_equal(carve_val(s, 0.2, seed=3).val.ids[:, 0], va)
    assert not np.array_equal(carve_val(s, 0.2, seed=4).val.ids[:, 0], va)
    assert carve_val(s, 0.0, seed=3) is s


def test_evaluate_on_val_replaces_the_test_split():
    s = _splits()
    out = carve_val(s, 0.2, seed=3, evaluate_on="val")
    assert out.val is None and len(out.test) == 20 and set(out.test.ids[:, 0]) <= set(range(100))
    assert np.array_equal(out.test.ids, carve_val(s, 0.2, seed=3).val.ids)
    with pytest.raises(ValueError, match="val_fraction"):
        DataConfig(evaluate_on="val")


def test_cell_with_val_fraction_logs_val_metrics():
    cell = tiny_cell("head")
    cell = cell.model_copy(update={"data": cell.data.model_copy(update={"val_fraction": 0.2})})
    ctx = build_context(cell)
    assert len(ctx.splits.val) == 40 and len(ctx.splits.train) == 160
    res = run_cell(cell, progress=False)
    assert {"val_accuracy", "val_loss", "accuracy"} <= set(res.rounds[-1])


def test_method_lr_overrides_fl_lr_and_enters_the_hash(tmp_path):
    g = parse_grid(tiny_grid_dict(tmp_path, methods=[{"name": "full", "lr": 1e-4}, {"name": "head"}]))
    full, head = g.cells()
    assert full.fl.lr == 1e-4 and full.method.lr == 1e-4 and head.fl.lr == g.fl.lr
    plain = parse_grid(tiny_grid_dict(tmp_path)).cells()[0]
    assert plain.hash() != full.hash()
    with pytest.raises(ConfigError, match="lr"):
        parse_grid(tiny_grid_dict(tmp_path, methods=[{"name": "full", "lr": -1}]))


def test_unset_new_keys_keep_old_hashes():
    """A store written before method.lr / data.evaluate_on / fl.final_window existed still matches its cells."""
    import hashlib
    import json

    cell = tiny_cell("full")
    d = cell.model_dump(mode="json")
    d["method"].pop("lr")
    d["data"].pop("evaluate_on")
    d["fl"].pop("final_window")
    assert cell.hash() == hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]


def test_tuned_file_sets_lr_per_dataset_and_method(tmp_path):
    f = tmp_path / "tuned.yaml"
    f.write_text(yaml.safe_dump({"chosen": {"bbc_news": {"full": 3e-4, "head": 1e-3}}}))
    g = parse_grid(tiny_grid_dict(tmp_path, tuned=str(f)))
    assert [c.fl.lr for c in g.cells()] == [3e-4, 1e-3]
    f.write_text(yaml.safe_dump({"chosen": {"bbc_news": {"full": 3e-4}}}))
    with pytest.raises(ConfigError, match="bbc_news/head"):
        parse_grid(tiny_grid_dict(tmp_path, tuned=str(f)))
    f.write_text(yaml.safe_dump({"chosen": {"bbc_news": {"full": 3e-4, "nope": 1e-3}}}))
    with pytest.raises(ConfigError, match="nope"):
        parse_grid(tiny_grid_dict(tmp_path, tuned=str(f)))
    with pytest.raises(ConfigError, match="layerbench tune"):
        parse_grid(tiny_grid_dict(tmp_path, tuned=str(tmp_path / "missing.yaml")))


def test_alpha_key_is_one_string_per_partition():
    from fl_core.config import alpha_key

    assert [alpha_key(a) for a in (1.0, 1, 0.3, "iid", "natural:movie_name")] == [
        "1.0",
        "1.0",
        "0.3",
        "iid",
        "natural:movie_name",
    ]


def _per_partition(f, chosen) -> None:
    f.write_text(yaml.safe_dump({"format": 2, "chosen": chosen}))


def test_per_partition_tuned_file_sets_lr_per_dataset_partition_and_method(tmp_path):
    f = tmp_path / "tuned.yaml"
    chosen = {"bbc_news": {"0.5": {"full": 3e-4, "head": 1e-3}, "iid": {"full": 1e-4, "head": 3e-3}}}
    _per_partition(f, chosen)
    g = parse_grid(tiny_grid_dict(tmp_path, alphas=[0.5, "iid"], tuned=str(f)))
    assert {(c.alpha, c.method.display): c.fl.lr for c in g.cells()} == {
        (0.5, "full"): 3e-4,
        (0.5, "head"): 1e-3,
        ("iid", "full"): 1e-4,
        ("iid", "head"): 3e-3,
    }
    f.write_text(
        "chosen:\n  bbc_news:\n    0.5: {full: 3.0e-4, head: 1.0e-3}\n    iid: {full: 1.0e-4, head: 3.0e-3}\n"
    )
    assert [
        c.fl.lr for c in parse_grid(tiny_grid_dict(tmp_path, alphas=[0.5, "iid"], tuned=str(f))).cells()
    ] == [
        3e-4,
        1e-3,
        1e-4,
        3e-3,
    ]  # a hand-written float key reads as its string


@pytest.mark.parametrize(
    ("chosen", "match"),
    [
        (
            {"bbc_news": {"0.5": {"full": 3e-4, "head": 1e-3}}},
            r"no lr for \['bbc_news/iid/full', 'bbc_news/iid/head'\]",
        ),
        ({"bbc_news": {"0.5": {"full": 1e-4, "head": 1e-3}, "iid": {"full": 1e-4}}}, "bbc_news/iid/head"),
        (
            {"bbc_news": {"0.3": {"full": 1e-4}, "0.5": {}, "iid": {}}},
            r"unknown partition '0.3'.*'0.5', 'iid'",
        ),
        ({"bbc_news": {"0.5": {"nope": 1e-4}, "iid": {}}}, "bbc_news.0.5: unknown method label 'nope'"),
        ({"bbc_news": {"0.5": {"full": -1}, "iid": {}}}, r"bbc_news.0.5.full: lr must be a number > 0"),
        ({"bbc_news": {"0.5": {"full": 1e-4}, "iid": 1e-4}}, "mixes the per-partition and old formats"),
    ],
)
def test_per_partition_tuned_file_is_checked_against_the_grid(tmp_path, chosen, match):
    f = tmp_path / "tuned.yaml"
    _per_partition(f, chosen)
    with pytest.raises(ConfigError, match=match):
        parse_grid(tiny_grid_dict(tmp_path, alphas=[0.5, "iid"], tuned=str(f)))


def test_an_old_tuned_file_gives_its_lr_to_every_partition(tmp_path):
    f = tmp_path / "tuned.yaml"
    f.write_text(yaml.safe_dump({"chosen": {"bbc_news": {"full": 3e-4, "head": 1e-3}}}))
    g = parse_grid(tiny_grid_dict(tmp_path, alphas=[0.5, "iid"], tuned=str(f)))
    assert {(c.alpha, c.method.display): c.fl.lr for c in g.cells()} == {
        (0.5, "full"): 3e-4,
        (0.5, "head"): 1e-3,
        ("iid", "full"): 3e-4,
        ("iid", "head"): 1e-3,
    }
