"""benchmarks/precision_parity.py pairs fp32/bf16 cells of the reference grid (behaviour only, no timing)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from fl_core.validate import load_grid

REF = Path(__file__).resolve().parents[2] / "configs" / "reference_v1.yaml"


@pytest.fixture()
def parity(load_bench):
    return load_bench("precision_parity")


def test_paired_difference_and_interval(parity):
    df = pd.DataFrame(
        [
            {"dataset": "d", "alpha": 1.0, "method": "full", "seed": s, "precision": p, "accuracy": a}
            for s, (a32, a16) in enumerate([(0.8, 0.82), (0.9, 0.9), (0.7, 0.74)])
            for p, a in (("fp32", a32), ("bf16", a16))
        ]
    )
    out = parity.paired(df, "accuracy")
    assert out["pairs"] == 3 and out["mean_diff"] == pytest.approx(0.02)
    assert out["ci95_lo"] < 0.02 < out["ci95_hi"]
    assert out["ci95_hi"] - 0.02 == pytest.approx(0.02 - out["ci95_lo"])


def test_fp32_cells_are_the_reference_cells_in_fp32(parity):
    ref = load_grid(REF, {"tuned": None})
    assert ref.fl.precision == "bf16"
    grid = parity.fp32_grid(ref)
    assert {m.display for m in grid.methods} == set(parity.METHODS) and grid.seeds == list(parity.SEEDS)
    assert grid.output_dir != ref.output_dir
    assert (grid.backend, grid.threads_per_cell) == (
        ref.backend,
        ref.threads_per_cell,
    )  # as the bf16 side ran
    published = {c.hash() for c in ref.cells()}
    for c in grid.cells():
        assert c.fl.precision == "fp32" and c.hash() not in published
        assert parity.twin(c, "bf16").hash() in published  # its pair is a published cell


def test_finished_fp32_cells_survive_in_the_compact_copy(parity, tmp_path):
    """A stopped parity run keeps its finished cells in git: ``--no-run`` in a fresh clone (no raw runs)
    restores them from the committed copy and never writes a smaller one."""
    import shutil

    from fl_core.compact import COMPACT, compact_hashes
    from fl_core.store import ResultStore
    from fl_core.validate import parse_grid
    from tests.conftest import tiny_grid_dict

    grid = parse_grid(tiny_grid_dict(tmp_path, methods=[{"name": "head"}]), "t.yaml")
    hashes = {c.hash() for c in grid.cells()}
    assert parity.keep_finished(grid) == 1
    copy = parity.report_dir(grid) / COMPACT
    assert compact_hashes(copy) == hashes
    shutil.rmtree(ResultStore(grid.output_dir).runs)  # a fresh clone: the committed copy only
    assert parity.keep_finished(grid, run=False) == 1
    assert compact_hashes(copy) == hashes and all(ResultStore(grid.output_dir).verify(h) for h in hashes)


def test_the_fp32_sweep_runs_on_the_grids_backend(parity, tmp_path, monkeypatch):
    """The fp32 twins run the way the published bf16 cells ran (Ray for the reference grid), not one by one."""
    import fl_core.sweep
    from fl_core.validate import parse_grid
    from tests.conftest import tiny_grid_dict

    seen = []
    monkeypatch.setattr(fl_core.sweep, "run_sweep", lambda grid, backend, progress: seen.append(backend))
    grid = parse_grid({**tiny_grid_dict(tmp_path), "backend": "ray"}, "t.yaml")
    parity.keep_finished(grid)
    assert seen == ["ray"]


def test_profiled_op_categories(load_bench):
    speed = load_bench("precision_speed")
    cat = speed.op_category
    assert [cat(op) for op in ("aten::mm", "aten::addmm", "aten::bmm")] == ["matmul"] * 3
    assert cat("aten::_scaled_dot_product_flash_attention_for_cpu") == "matmul"
    assert (cat("aten::_to_copy"), cat("aten::bernoulli_"), cat("aten::gelu")) == (
        "copy",
        "dropout_rng",
        "other",
    )


def test_time_breakdown_finds_the_matmuls_of_a_real_step(load_bench):
    """The profiler's op names are what ``op_category`` expects: most of an fp32 step is matmul time."""
    df = load_bench("precision_speed").time_breakdown(threads=1, n_batches=1).set_index("precision")
    assert list(df.index) == ["fp32", "bf16"]
    parts = df[["matmul", "copy", "dropout_rng", "other"]].sum(axis=1)
    assert (parts - df["step_s"]).abs().max() < 1e-3
    assert df.loc["fp32", "matmul_share"] > 0.5 and df.loc["bf16", "matmul"] > 0
    assert df.loc["fp32", "step_speedup"] == 1.0
