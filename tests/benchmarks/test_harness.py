"""benchmarks/harness.py: the output dir, the cell builders, the internals swap and the shared
results/perf/README.md writer (a section is replaced in place, the others are kept); no timing."""

from __future__ import annotations

import types
from pathlib import Path

import pandas as pd
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
    harness.publish("x", "run line", seconds=2)
    assert "## x (2 s)\n\nrun line\n" in (tmp_path / "elsewhere" / "README.md").read_text()


def test_no_script_hard_codes_the_output_dir():
    from .conftest import BENCH

    scripts = [p for p in BENCH.glob("*.py") if p.name != "harness.py"]
    assert scripts and not [p.name for p in scripts if 'Path("results/perf' in p.read_text()]


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


def test_section_layout_and_replacement(tmp_path: Path, harness) -> None:
    section, write_section = harness.section, harness.write_section

    assert section("ray", "run", "table") == ["## ray", "", "run", "", "table", ""]
    assert section("grid", "run", seconds=12.4)[0] == "## grid (12 s)"
    readme = tmp_path / "README.md"
    write_section(readme, "a", section("a", "first"))
    write_section(readme, "b", section("b", "second"))
    write_section(readme, "a", section("a", "replaced", seconds=3))
    text = readme.read_text()
    assert text.startswith("# Simulator speed")
    assert "first" not in text and text.index("## a (3 s)") < text.index("replaced") < text.index("## b")
    assert text.count("## a") == 1 and "second" in text


def test_speed_steps_only_replaces_its_rows(tmp_path: Path, load_bench) -> None:
    steps = load_bench("speed_steps")
    previous = tmp_path / "perf_steps.csv"
    old = pd.DataFrame(
        {
            "step": ["tokenize", "prefix_cache", "prefix_cache", "eval_no_grad", "threads"],
            "speedup": [9, 1, 1, 2, 3],
        }
    )
    old.to_csv(previous, index=False)
    new = pd.DataFrame({"step": ["prefix_cache"] * 3, "speedup": [5, 6, 7], "measured": "today"})
    merged = steps.merge_rows(new, ["prefix_cache"], previous)
    assert list(merged.step) == ["tokenize", *["prefix_cache"] * 3, "eval_no_grad", "threads"]
    assert list(merged.speedup) == [9, 5, 6, 7, 2, 3]
    assert list(merged.measured) == ["earlier run", "today", "today", "today", "earlier run", "earlier run"]
    assert steps.merge_rows(new, None, previous).equals(new)  # a full run keeps only its own rows


def test_one_blank_line_between_sections(tmp_path: Path, harness) -> None:
    readme = tmp_path / "README.md"
    for name in ("a", "b", "a"):
        harness.write_section(readme, name, harness.section(name, "run", "table"))
    assert "\n\n\n" not in readme.read_text()
