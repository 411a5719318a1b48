"""benchmarks/ray_throughput.py: both ways run the same reference cells (behaviour only, no timing)."""

from __future__ import annotations

from pathlib import Path

import pytest

from fl_core.validate import load_grid

REF = Path(__file__).resolve().parents[2] / "configs" / "reference_v1.yaml"


@pytest.fixture()
def bench(load_bench):
    return load_bench("ray_throughput")


def test_both_ways_run_the_same_reference_cells(bench, monkeypatch):
    monkeypatch.setattr("os.cpu_count", lambda: 2)
    ref = load_grid(REF, {"tuned": None})
    seq = bench.slice_grid(ref, "sequential", "/tmp/a", "bbc_news")
    ray = bench.slice_grid(ref, "ray", "/tmp/b", "bbc_news")
    assert [c.hash() for c in seq.cells()] == [c.hash() for c in ray.cells()]
    assert {c.hash() for c in seq.cells()} <= {c.hash() for c in ref.cells()}  # the published cells
    assert len(seq.cells()) == len(bench.METHODS)
    assert (seq.threads_per_cell, ray.threads_per_cell, ray.ray.cpus_per_cell) == (2, 1, 1.0)
