"""Duplicate rows of a grid (issue 26): centralized once per dataset, budgets that resolve to the same
LoRA rank run once, and the sweep records the repeats as ``duplicate`` without running them."""

from __future__ import annotations

from fl_core.duplicates import DUPLICATE, find_duplicates, run_key
from fl_core.store import ResultStore
from fl_core.sweep import run_sweep
from fl_core.validate import parse_grid
from tests.conftest import tiny_grid_dict

LABELS = {"bbc_news": 5}.__getitem__


def _grid(tmp_path, methods, alphas=(1.0, 0.5)):
    return parse_grid(tiny_grid_dict(tmp_path, methods=methods, alphas=list(alphas)))


def test_centralized_runs_once_per_dataset(tmp_path):
    grid = _grid(tmp_path, [{"name": "centralized"}, {"name": "full"}])
    dups = find_duplicates(grid.cells(), LABELS)
    cen = [c for c in grid.cells() if c.method.name == "centralized"]
    assert set(dups) == {cen[1].hash()} and dups[cen[1].hash()] == cen[0]  # full differs per alpha


def test_budgets_with_one_rank_are_one_run_and_a_binding_one_is_not(tmp_path):
    methods = [
        {"name": "lora_budget", "label": "lora-0.9", "params": {"budget": 0.9, "constrain": ["upload"]}},
        {"name": "lora_budget", "label": "lora-0.95", "params": {"budget": 0.95, "constrain": ["upload"]}},
        {"name": "lora", "label": "lora-r8"},
    ]
    grid = _grid(tmp_path, methods, alphas=[1.0])
    cells = {c.method.display: c for c in grid.cells()}
    keys = {lab: run_key(c, LABELS) for lab, c in cells.items()}
    assert keys["lora-0.9"] == keys["lora-0.95"]  # both budgets allow the largest rank tried
    assert keys["lora-r8"] != keys["lora-0.9"]
    for budget in (0.5, 0.01):  # a binding budget (rank 16 on tiny-bert), one no rank fits
        p = {"budget": budget, "constrain": ["upload"]}
        tight = cells["lora-0.9"].model_copy(
            update={"method": cells["lora-0.9"].method.model_copy(update={"params": p})}
        )
        assert run_key(tight, LABELS) != keys["lora-0.9"]


def test_sweep_records_the_repeat_without_running_it(tmp_path):
    grid = _grid(tmp_path, [{"name": "centralized"}], alphas=[1.0, 0.5])
    report = run_sweep(grid, progress=False)
    store = ResultStore(grid.output_dir)
    first, second = grid.cells()
    assert report.ran == 1 and store.load_result(first.hash())["status"] == "ok"
    dup = store.load_result(second.hash())
    assert dup["status"] == DUPLICATE and dup["info"]["same_as"]["config_hash"] == first.hash()
    assert "same run as centralized at partition 1.0" in dup["reason"]
    assert store.is_done(second.hash())
    assert run_sweep(grid, progress=False).ran == 0  # resumed: nothing left, nothing rerun


def test_a_suffix_every_device_shares_is_top_k(tmp_path):
    """tiny whose budget gives every device the same suffix is top_k at that depth (or head at 0)."""
    methods = [
        {"name": "tiny", "label": "tiny-1", "params": {"budget": 1.0, "candidates": ["tiny-bert"]}},
        {"name": "top_k", "label": "top-2", "params": {"k": 2}},
        {
            "name": "tiny",
            "label": "tiny-up",
            "params": {"budget": 0.1, "constrain": ["upload"], "candidates": ["tiny-bert"]},
        },
        {"name": "head"},
        {"name": "tiny", "label": "tiny-het", "params": {"budget": "hetero", "candidates": ["tiny-bert"]}},
    ]
    grid = _grid(tmp_path, methods, alphas=[1.0])
    keys = {c.method.display: run_key(c, LABELS) for c in grid.cells()}
    assert keys["tiny-1"] == keys["top-2"] and keys["tiny-up"] == keys["head"]
    assert keys["tiny-het"] not in (keys["top-2"], keys["head"])
