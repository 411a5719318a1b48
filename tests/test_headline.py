"""A cell's headline numbers: final_* over the last fl.final_window evaluations."""

from __future__ import annotations

import pytest

from fl_core.cell import headline
from fl_core.config import RunConfig


def _evals(accs):
    rows = [{"round": -1, "accuracy": 0.0, "macro_f1": 0.0, "loss": 9.0}]
    for i, a in enumerate(accs):
        rows.append({"round": 2 * i})  # a round without evaluation
        rows.append(
            {"round": 2 * i + 1, "accuracy": a, "macro_f1": a / 2, "loss": 1 - a, "personal_accuracy": a}
        )
    return rows


def test_window_one_is_the_last_evaluation_and_three_the_mean_of_the_last_three():
    rounds = _evals([0.5, 0.9, 0.6, 0.7, 0.8])
    one = headline(rounds, [])
    assert one["final_accuracy"] == 0.8 and one["final_loss"] == pytest.approx(0.2)
    three = headline(rounds, [], window=3)
    assert three["final_accuracy"] == pytest.approx(0.7)
    assert three["final_macro_f1"] == pytest.approx(0.35) and three[
        "final_personal_accuracy"
    ] == pytest.approx(0.7)
    assert three["best_accuracy"] == one["best_accuracy"] == 0.9 and three["rounds_run"] == 10
    # the pre-training evaluation (round -1) never enters a window, however wide
    assert headline(rounds, [], window=50)["final_accuracy"] == pytest.approx(0.7)


def test_final_window_enters_the_cell_hash_only_when_set():
    base = {"dataset": "bbc_news", "alpha": 1.0, "method": {"name": "full"}, "seed": 0}
    default = RunConfig(**base)
    assert RunConfig(**base, fl={"final_window": 1}).hash() == default.hash()
    assert RunConfig(**base, fl={"final_window": 3}).hash() != default.hash()
    with pytest.raises(ValueError, match="final_window"):
        RunConfig(**base, fl={"final_window": 0})
