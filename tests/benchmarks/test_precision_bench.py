"""benchmarks/precision_parity.py pairs fp32/bf16 by seed (behaviour only, no timing)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pandas as pd
import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.fixture()
def parity(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCH))  # the script imports its sibling perf_readme
    spec = importlib.util.spec_from_file_location("precision_parity", BENCH / "precision_parity.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_paired_difference_and_interval(parity):
    df = pd.DataFrame(
        [
            {"method": "full", "seed": s, "precision": p, "accuracy": a}
            for s, (a32, a16) in enumerate([(0.8, 0.82), (0.9, 0.9), (0.7, 0.74)])
            for p, a in (("fp32", a32), ("bf16", a16))
        ]
    )
    out = parity.paired(df, "accuracy")
    assert out["pairs"] == 3 and out["mean_diff"] == pytest.approx(0.02)
    assert out["ci95_lo"] < 0.02 < out["ci95_hi"]
    assert out["ci95_hi"] - 0.02 == pytest.approx(0.02 - out["ci95_lo"])


def test_cells_differ_only_in_precision(parity):
    a, b = parity.cell("full", 0, "fp32"), parity.cell("full", 0, "bf16")
    assert a.hash() != b.hash()
    assert a.model_copy(update={"fl": a.fl.model_copy(update={"precision": "bf16"})}) == b
