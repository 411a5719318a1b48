"""benchmarks/client_overhead.py on the random tiny-bert: the phases add up, the report has its parts."""

from __future__ import annotations

import pandas as pd
import pytest
import yaml

import fl_core.client as client_mod
import fl_core.simulator as sim
import fl_core.trainer as trainer
from fl_core.cost_record import CostRecord

from ..conftest import tiny_grid_dict

METHODS = [{"name": "full"}, {"name": "top_k", "label": "top-1", "params": {"k": 1}}, {"name": "lora"}]


def test_phases_add_up_and_the_section_names_its_run(load_bench, tmp_path):
    bench = load_bench("client_overhead")
    (tmp_path / "g.yaml").write_text(yaml.safe_dump(tiny_grid_dict(tmp_path, methods=METHODS)))
    argv = ["--config", str(tmp_path / "g.yaml"), "--methods", "full", "top-1", "lora"]
    bench.main([*argv, "--clients", "8", "--per-round", "4", "--reps", "2", "--out", str(tmp_path / "perf")])

    df = pd.read_csv(tmp_path / "perf" / "perf_client_overhead.csv")
    assert set(df.method) == {"full", "top-1", "lora"} and set(df.rep) == {0, 1}
    for clock in ("seconds", "cpu_seconds"):  # wall and CPU time: compute + overhead = the client's time
        sums = df.pivot_table(index=["method", "rep"], columns="kind", values=clock, aggfunc="sum")
        assert sums["compute"].gt(0).all() and sums["overhead"].gt(0).all()
        parts = (sums["compute"] + sums["overhead"]).to_numpy()
        assert parts == pytest.approx(sums["total"].to_numpy(), rel=1e-9)
    named = {"restore global values", "optimizer creation", "method hooks", "cost records", "aggregate"}
    assert set(bench.COMPUTE) | named <= set(df.phase)
    summary = bench.summarize(df)
    assert list(summary.method) == ["full", "top-1", "lora"]
    assert (summary.share_min <= summary.overhead_share).all() and (summary.overhead_share < 1).all()
    assert summary.cpu_share.between(0, 1).all() and (summary.client_rows >= 8).all()

    text = (tmp_path / "perf" / "README.md").read_text()
    assert "## client_overhead" in text and "benchmarks/client_overhead.py --config" in text
    assert "torch " in text and "git `" in text and "restore global values" in text
    # every patched function is put back
    assert not hasattr(sim.run_client, "__wrapped__") and not hasattr(trainer._step, "__wrapped__")
    assert not hasattr(CostRecord.add_pass, "__wrapped__") and client_mod.Loop is trainer.Loop
