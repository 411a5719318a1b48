"""The benchmark scripts are not a package: tests load each one from ``benchmarks/`` by path."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.fixture()
def load_bench(monkeypatch):
    """``load_bench("grid_speed")``: the module ``benchmarks/grid_speed.py``, its siblings importable."""

    def load(name: str) -> ModuleType:
        monkeypatch.syspath_prepend(str(BENCH))  # the scripts import their sibling harness
        spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        return mod

    return load
