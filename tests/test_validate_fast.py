"""Validation is torch-free (issue 14): a bad grid is rejected by the CLI before torch, transformers,
peft or datasets is imported, from torch-free declarations that match the full registries."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "transformers", "peft", "datasets")

# Runs the CLI in-process, then reports which heavy libraries got imported (no timing involved).
WRAPPER = f"""
import runpy, sys
sys.argv = ["layerbench", *sys.argv[1:]]
code = 0
try:
    runpy.run_module("fl_core.cli", run_name="__main__", alter_sys=True)
except SystemExit as e:
    code = e.code
print("HEAVY:", sorted(m for m in {HEAVY!r} if m in sys.modules), file=sys.stderr)
sys.exit(code)
"""


def _smoke() -> dict:
    return yaml.safe_load((ROOT / "configs" / "smoke.yaml").read_text())


def _bad_fl_key(g):
    g["fl"]["local_stepz"] = g["fl"].pop("local_steps")


def _unknown_method(g):
    g["methods"][1] = {"name": "haed"}


def _bad_param(g):
    g["methods"][1] = {"name": "top_k", "params": {"k": 99}}


def _bad_precision(g):
    g["fl"]["precision"] = "fp13"


@pytest.mark.parametrize(
    ("break_it", "must_name"),
    [
        (_bad_fl_key, "fl.local_stepz"),
        (_unknown_method, "methods[1].name: unknown method 'haed'"),
        (_bad_param, "methods[1].params (top_k): k=99"),
        (_bad_precision, "fl.precision"),
    ],
)
@pytest.mark.parametrize("command", ["sweep", "run", "report", "tune"])
def test_bad_config_is_rejected_before_torch(tmp_path, break_it, must_name, command):
    grid = _smoke()
    break_it(grid)
    grid["output_dir"] = str(tmp_path / "results")
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(grid))
    proc = subprocess.run(
        [sys.executable, "-c", WRAPPER, command, str(path)], cwd=ROOT, capture_output=True, text=True
    )
    assert proc.returncode == 2, proc.stderr
    assert must_name in proc.stderr
    assert "HEAVY: []" in proc.stderr, proc.stderr
    assert not (tmp_path / "results").exists()


def _run_cli(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", WRAPPER, *argv], cwd=ROOT, capture_output=True, text=True)


def _long_max_len(g):
    g["fl"]["max_len"] = 4096


def _negative_seed(g):
    g["seeds"] = [-1]


def _inf_alpha(g):
    g["alphas"] = [float("inf")]


def _path_name(g):
    g["name"] = "exp/v1"


@pytest.mark.parametrize(
    ("break_it", "must_name"),
    [
        (_long_max_len, "fl.max_len: 4096"),
        (_negative_seed, "seeds: seeds must be >= 0"),
        (_inf_alpha, "alphas: alpha must be a finite number"),
        (_path_name, "name: name 'exp/v1'"),
    ],
)
def test_issue25_gaps_are_rejected_before_torch(tmp_path, break_it, must_name):
    grid = _smoke()
    break_it(grid)
    grid["output_dir"] = str(tmp_path / "results")
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(grid))
    proc = _run_cli("sweep", str(path))
    assert proc.returncode == 2, proc.stderr
    assert must_name in proc.stderr and "Traceback" not in proc.stderr
    assert "HEAVY: []" in proc.stderr, proc.stderr
    assert not (tmp_path / "results").exists()


@pytest.mark.parametrize("command", ["sweep", "run", "report", "tune"])
def test_empty_yaml_is_one_line_in_every_command(tmp_path, command):
    path = tmp_path / "empty.yaml"
    path.write_text("")
    extra = ["--output-dir", str(tmp_path / "out")] if command != "tune" else []
    proc = _run_cli(command, str(path), *extra)
    assert proc.returncode == 2, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "(top level): expected a mapping" in errors[0], proc.stderr
    assert "Traceback" not in proc.stderr and "HEAVY: []" in proc.stderr


def test_valid_grid_loads_torch_free():
    code = (
        "import sys; from fl_core.validate import load_grid; g = load_grid('configs/paper_tiny.yaml'); "
        f"print(len(g.cells()), sorted(m for m in {HEAVY!r} if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.split(" ", 1)[1].strip() == "[]", out.stdout


def test_default_grid_hashes_unchanged(monkeypatch):
    """Every cell hash of configs/default.yaml, pinned before validation moved to the declarations
    (the 78 cells of the methods the grid had then; `centralized` joined it later). Since the head
    reads MiniLM-L6's own (mean) pooling every hash moved on purpose; with the pooling taken out of
    the hash they are the pinned ones again, so nothing else moved them."""
    from fl_core.validate import load_grid

    def digest() -> str:
        cells = load_grid(ROOT / "configs" / "default.yaml").cells()
        hashes = [c.hash() for c in cells if c.method.name != "centralized"]
        assert len(hashes) == 78
        return hashlib.sha256("\n".join(hashes).encode()).hexdigest()

    assert digest() == "add35860573290b21d9cdae25b615201f716f9c1abfd98d1903a816df1b42391"
    monkeypatch.setattr("fl_core.config.model_pooling", lambda name: "cls")
    assert digest() == "dcd922214d6d636b057ca49dca567eeabbf5f2e72e6abbcceb21d4e232e4d508"


def test_declarations_match_the_registries():
    from fl_core.data import DATASETS
    from fl_core.dataset_names import DATASET_NAMES
    from fl_core.methods import METHODS
    from fl_core.params import DECLARED

    assert set(DECLARED) == set(METHODS)
    assert {n: c.Params for n, c in METHODS.items()} == {n: d.params for n, d in DECLARED.items()}
    assert set(DATASETS) == DATASET_NAMES


def test_register_refuses_an_undeclared_method():
    from fl_core.methods.base import Method, register

    with pytest.raises(ValueError, match="declare its Params"):
        register("not_declared_anywhere")(type("X", (Method,), {}))
