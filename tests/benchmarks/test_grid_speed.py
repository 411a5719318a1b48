"""benchmarks/grid_speed.py runs every cell of the slice both ways (behaviour only, no timing)."""

from __future__ import annotations

import sys

import pandas as pd
import pytest
import yaml

from fl_core.simulator import CellResult

from ..conftest import tiny_grid_dict


@pytest.fixture()
def grid_speed(load_bench):
    return load_bench("grid_speed")


def test_each_cell_runs_before_and_after_alternating(grid_speed, tmp_path, monkeypatch):
    cfg = tiny_grid_dict(tmp_path, alphas=[0.1, 1.0], seeds=[0, 1])
    (tmp_path / "g.yaml").write_text(yaml.safe_dump(cfg))
    seen = []

    def fake_run_cell(cell, progress=True):
        seen.append(cell)
        return CellResult(status="ok", rounds=[{"accuracy": 0.5}], costs=[], selections=[], partition={})

    monkeypatch.setattr(grid_speed, "run_cell", fake_run_cell)
    monkeypatch.setenv("LAYERBENCH_PERF_DIR", str(tmp_path / "perf"))
    monkeypatch.setattr(sys, "argv", ["grid_speed", "--config", str(tmp_path / "g.yaml"), "--alpha", "1.0"])
    grid_speed.main()
    assert len(seen) == 4  # 2 methods at alpha 1.0, seed 0, each both ways
    assert all(c.alpha == 1.0 and c.seed == 0 for c in seen)
    before = [c for c in seen if not c.fl.prefix_cache]
    assert len(before) == 2 and all(c.fl.length_buckets == 0 for c in before)
    assert [c.fl.prefix_cache for c in seen] == [False, True, True, False]  # who goes first alternates
    df = pd.read_csv(tmp_path / "perf" / "perf_grid.csv")
    assert list(df.method) == ["full", "head"] and (df.before_status == "ok").all()
    assert "## grid" in (tmp_path / "perf" / "README.md").read_text()


def test_no_matching_cell_is_an_error(grid_speed, tmp_path, monkeypatch):
    (tmp_path / "g.yaml").write_text(yaml.safe_dump(tiny_grid_dict(tmp_path)))
    monkeypatch.setattr(sys, "argv", ["grid_speed", "--config", str(tmp_path / "g.yaml"), "--seed", "5"])
    with pytest.raises(SystemExit, match="seed=5"):
        grid_speed.main()
