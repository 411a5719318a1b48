"""Every method declares the family the report groups it by, and the server-side choices the
"what was updated" figure draws are recorded per round."""

from __future__ import annotations

from fl_core.methods import METHODS
from fl_core.report.style import FAMILIES
from fl_core.simulator import run_cell
from tests.conftest import tiny_cell


def test_every_registered_method_declares_a_known_family():
    undeclared = {n: c.family for n, c in METHODS.items() if c.family not in FAMILIES or c.family == "other"}
    assert undeclared == {}
    assert METHODS["lora_budget"].family == "budget" != METHODS["lora"].family  # a subclass re-declares


def test_cell_records_family_and_the_servers_applied_blocks():
    res = run_cell(tiny_cell("random", k=1, mode="server"), progress=False)
    assert res.info["family"] == "fedtlu"
    trained = [r for r in res.rounds if r["round"] >= 0]
    applied = [r["method_applied_blocks"] for r in trained]
    assert all(len(a) == 1 and 0 <= a[0] < res.info["num_blocks"] for a in applied)
    sel = {s["round"]: s["info_applied"] for s in res.selections}
    assert [sel[r["round"]] for r in trained] == applied  # the draw the clients were told about
    full = run_cell(tiny_cell("full"), progress=False)
    assert full.info["family"] == "references"
    assert not any(k.startswith("method_applied") for r in full.rounds for k in r)


def test_headline_leaves_out_the_evaluation_before_round_0():
    from fl_core.cell import headline

    rows = [
        {
            "round": -1,
            "accuracy": 0.9,
            "macro_f1": 0.9,
            "loss": 0.1,
        },  # (an implausible start: it must not count)
        {"round": 0, "train_loss": 1.0, "accuracy": 0.5, "macro_f1": 0.4, "loss": 1.2},
        {"round": 1, "train_loss": 0.9, "accuracy": 0.6, "macro_f1": 0.5, "loss": 1.0},
    ]
    h = headline(rows, [])
    assert h == {
        "rounds_run": 2,
        "final_accuracy": 0.6,
        "final_macro_f1": 0.5,
        "final_loss": 1.0,
        "best_accuracy": 0.6,
    }
