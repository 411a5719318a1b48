"""``layerbench sweep --dry-run``: a grid's size from analytic step FLOPs, nothing run."""

from __future__ import annotations

from fl_core.flop_estimate import cell_cost, estimate
from fl_core.validate import parse_grid
from tests.conftest import tiny_grid_dict


def test_estimate_counts_cells_and_scales_with_rounds(tmp_path):
    d = tiny_grid_dict(tmp_path, model="tiny-llama", datasets=["bbc_news", "bbc_news_lm"])
    grid = parse_grid(d, "t.yaml")
    lines = estimate(grid)
    assert lines[0].startswith(f"t: {len(grid.cells())} cells") and len(lines) == 3
    assert not (tmp_path / "results").exists()  # nothing ran
    longer = parse_grid({**d, "fl": {**d["fl"], "rounds": 2 * d["fl"]["rounds"]}}, "t.yaml")
    a, b = cell_cost(grid.cells()[0]), cell_cost(longer.cells()[0])
    assert b[1] == 2 * a[1] and a[0] < b[0] < 2 * a[0] + 1  # evaluation rounds do not double
    lm = [c for c in grid.cells() if c.dataset == "bbc_news_lm"][0]
    assert cell_cost(lm)[0] > a[0]  # the LM head over the vocabulary at every position
