"""benchmarks/cell_cost.py: the 'before' variant really runs the per-tensor AdamW loop, and only there."""

from __future__ import annotations

import pandas as pd
import pytest
import torch

import fl_core.trainer as trainer
from tests.conftest import tiny_cell


@pytest.fixture()
def cost(load_bench):
    return load_bench("cell_cost")


def _adamw_defaults(monkeypatch, cost, name):
    seen = []
    built = torch.optim.AdamW.__init__

    def spy(self, params, **kw):
        seen.append((kw.get("fused"), kw.get("foreach")))
        built(self, params, **kw)

    monkeypatch.setattr(torch.optim.AdamW, "__init__", spy)
    row = cost.run_variant(tiny_cell("full"), name)
    assert row["status"] == "ok" and row["client_tflops"] >= 0
    return set(seen)


def test_before_runs_the_loop_adamw_and_the_others_the_fused_one(monkeypatch, cost):
    assert _adamw_defaults(monkeypatch, cost, "before") == {(False, False)}
    assert trainer.local_optimizer.__module__ == "fl_core.optim"  # put back after the "before" run
    assert _adamw_defaults(monkeypatch, cost, "fp32") == {(True, None)}


def test_variants_differ_in_precision_only(cost):
    cell = tiny_cell("full")
    assert cost.variant(cell, "bf16").fl.precision == "bf16"
    assert cost.variant(cell, "before").fl.precision == cost.variant(cell, "fp32").fl.precision == "fp32"
    assert cost.variant(cell, "bf16").model_copy(update={"fl": cell.fl}).hash() == cell.hash()


def test_summary_speedup_is_before_over_variant(cost):
    df = pd.DataFrame(
        [
            {"variant": v, "cell_s": s, "client_train_s": s, "client_tflops": 1.0, "accuracy": 0.9}
            for v, s in [("before", 100.0), ("fp32", 80.0), ("bf16", 50.0), ("before", 120.0)]
        ]
    )
    out = cost.summarize(df).set_index("variant")
    assert out.loc["bf16", "speedup_vs_before"] == pytest.approx(110 / 50, abs=0.01)
    assert out.loc["before", "reps"] == 2
