"""centralized: one client, all training rows, the optimizer steps of a whole `full` round per round."""

from __future__ import annotations

from fl_core.methods.centralized import equal_compute_steps
from fl_core.simulator import build_context, run_cell
from tests.conftest import tiny_cell


def test_one_client_holds_all_train_rows_and_steps_match_full():
    cell = tiny_cell("centralized", alpha=0.1)
    ctx = build_context(cell)
    assert len(ctx.clients) == 1 and len(ctx.clients[0]) == len(ctx.splits.train)
    fl = cell.fl
    assert ctx.cfg.fl.local_steps == fl.clients_per_round * fl.local_steps
    full = run_cell(tiny_cell("full", alpha=0.1), progress=False)
    cen = run_cell(cell, progress=False)
    steps = lambda res: sum(c["samples"] for c in res.costs) / fl.batch_size  # noqa: E731
    assert steps(cen) == steps(full) == fl.rounds * fl.clients_per_round * fl.local_steps
    assert [r["round"] for r in cen.rounds] == [r["round"] for r in full.rounds]
    assert "accuracy" in cen.rounds[-1]


def test_without_a_step_cap_steps_follow_the_average_client():
    fl = tiny_cell().fl.model_copy(update={"local_steps": None, "local_epochs": 2})
    # 200 rows over 4 clients at batch 8: 7 steps per epoch per client, 2 clients, 2 epochs
    assert equal_compute_steps(fl, 200) == 2 * 2 * 7
