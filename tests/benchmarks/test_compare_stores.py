"""benchmarks/compare_stores.py: equal stores pass, a changed number fails naming its column."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest


@pytest.fixture()
def compare_stores(load_bench):
    return load_bench("compare_stores")


def _store(root: Path, rounds: pd.DataFrame, h: str = "abc") -> Path:
    d = root / "runs" / h
    d.mkdir(parents=True)
    result = {"label": "full", "dataset": "bbc_news", "alpha": 1.0, "seed": 0}
    (d / "result.json").write_text(json.dumps(result))
    rounds.to_csv(d / "rounds.csv", index=False)
    pd.DataFrame({"round": [0, 1], "flops": [1.5, 2.5], "wall_s": [0.1, 0.2]}).to_csv(
        d / "costs.csv", index=False
    )
    return root


ROUNDS = pd.DataFrame({"round": [0, 1], "accuracy": [0.5, 0.75], "train_loss": [1.25, 0.5]})


def test_equal_stores_pass_with_extra_rows_and_columns_ignored(compare_stores, tmp_path, monkeypatch, capsys):
    later = pd.concat([pd.DataFrame({"round": [-1], "accuracy": [0.2]}), ROUNDS]).assign(new_metric=1)
    a, b = _store(tmp_path / "a", ROUNDS), _store(tmp_path / "b", later, h="def")  # hashes may differ
    monkeypatch.setattr("sys.argv", ["compare_stores", str(a), str(b)])
    assert compare_stores.main() == 0
    assert "rounds.csv identical" in capsys.readouterr().out


def test_a_changed_number_fails_naming_its_column(compare_stores, tmp_path, monkeypatch, capsys):
    changed = ROUNDS.assign(accuracy=[0.5, 0.7500001])
    a, b = _store(tmp_path / "a", ROUNDS), _store(tmp_path / "b", changed)
    monkeypatch.setattr("sys.argv", ["compare_stores", str(a), str(b)])
    assert compare_stores.main() == 1
    assert "DIFFERS in accuracy" in capsys.readouterr().out
