"""benchmarks/harness.py: the output dir, the cell builders and the internals swap (no timing)."""

from __future__ import annotations

import types
from pathlib import Path

import pytest
import yaml

from fl_core.config import DataConfig, FLConfig, MethodSpec, RunConfig
from fl_core.validate import load_grid

from ..conftest import tiny_grid_dict


@pytest.fixture()
def harness(load_bench):
    return load_bench("harness")


def test_out_dir_is_results_perf_unless_the_env_says_otherwise(harness, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(harness.OUT_ENV, raising=False)
    assert harness.out_dir() == Path("results/perf") and (tmp_path / "results" / "perf").is_dir()
    monkeypatch.setenv(harness.OUT_ENV, str(tmp_path / "elsewhere"))
    assert harness.out_dir() == tmp_path / "elsewhere" and (tmp_path / "elsewhere").is_dir()


def test_run_config_is_the_benchmarks_cell(harness):
    want = RunConfig(
        dataset="bbc_news",
        alpha="iid",
        method=MethodSpec(name="top_k", params={"k": 1}),
        seed=0,
        model="minilm-l6",
        fl=FLConfig(
            num_clients=100,
            clients_per_round=10,
            rounds=1,
            local_steps=2,
            batch_size=16,
            max_len=32,
            prefix_cache=False,
        ),
        data=DataConfig(min_partition_size=1),
    )
    got = harness.run_config("top_k", params={"k": 1}, num_clients=100, local_steps=2)
    assert got.model_dump() == want.model_dump()
    sliced = harness.run_config(alpha=1.0, data={"max_train_samples": 1000})
    assert sliced.alpha == 1.0 and sliced.data == DataConfig(max_train_samples=1000)


def test_with_fl_and_cells_of(harness, tmp_path):
    (tmp_path / "g.yaml").write_text(yaml.safe_dump(tiny_grid_dict(tmp_path, alphas=[0.1, 1.0])))
    grid = load_grid(tmp_path / "g.yaml")
    cells = harness.cells_of(grid, "head", alpha=1.0)
    assert [(c.method.display, c.alpha) for c in cells] == [("head", 1.0)]
    assert len(harness.cells_of(grid, seed=0)) == 4 and harness.cells_of(grid, "nope") == []
    twin = harness.with_fl(cells[0], precision="bf16")
    assert twin.fl.precision == "bf16" and twin.model_copy(update={"fl": cells[0].fl}) == cells[0]


def test_patch_internals_puts_everything_back(harness):
    mod = types.ModuleType("m")
    mod.f = lambda: "real"

    class Obj:
        def g(self) -> str:
            return "method"

    obj = Obj()
    with pytest.raises(RuntimeError), harness.patch_internals((mod, "f", lambda: "fake"), (obj, "g", str)):
        assert mod.f() == "fake" and obj.g() == ""
        raise RuntimeError
    assert mod.f() == "real" and obj.g() == "method" and "g" not in vars(obj)
