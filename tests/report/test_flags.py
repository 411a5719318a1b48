"""Collapsed cells, plateau flags for every method, duplicates and non-Dirichlet partitions in the report."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

import fl_core.report.convergence as conv
from fl_core.report.collapse import constant_macro_f1
from fl_core.report.load import Results, load_results
from fl_core.report.partitions import least_skewed, partition_label, sort_partitions
from fl_core.report.tables import accuracy_table, markdown


def test_constant_predictor_macro_f1_by_hand():
    # Rotten Tomatoes test split, 57% "fresh": always "fresh" -> F1 2·0.57/1.57 = 0.726 on it, 0 on the other
    assert constant_macro_f1(0.57, 2) == pytest.approx(0.5 * 1.14 / 1.57)
    assert constant_macro_f1(0.2, 5) == pytest.approx(0.2 * 0.4 / 1.2)
    assert math.isnan(constant_macro_f1(math.nan, 2))


@pytest.fixture(scope="module")
def collapse_res(tmp_path_factory, make_store_module):
    m = make_store_module
    methods = [
        ("full", "full", {}, (0.80, 0.90), list(range(6)), 22_000_000, 1.0, m.SEEDS),
        # final accuracy ~0.14 -> macro-F1 ~0.09 (the fixture's F1 is accuracy − 0.05): within 2 pp of the
        # constant predictor's 0.08-0.09 for 5 classes
        ("head", "head", {}, (0.14, 0.90), [], 4_000, 0.0, m.SEEDS),
    ]
    return load_results(m.make_store(tmp_path_factory.mktemp("collapse"), methods=methods))


def test_collapsed_cells_are_counted_per_method_with_the_training_label_fallback(collapse_res):
    t = accuracy_table(collapse_res)
    d = t.data.set_index(["label", "alpha"])
    assert d.loc[("head", "0.1"), "collapsed"] == 3 and d.loc[("full", "0.1"), "collapsed"] == 0
    assert d.loc[("head", "1.0"), "collapsed"] == 0
    disp = t.display.set_index(["method", "alpha"])
    assert disp.loc[("head", "0.1"), "collapsed"] == "3/3"
    assert "Collapsed: 3 of 6 finished cells (50%)." in t.group_notes[("bbc_news", "0.1")]
    # the fixture records no test majority share: every cell falls back to its training labels, and says so
    assert any("use the majority share of their pooled client training labels" in x for x in t.legend)


def test_the_recorded_test_majority_share_is_used_first(collapse_res):
    cells = collapse_res.cells.copy()
    cells["test_majority_share"] = 0.99  # a floor of ~0.2 for 5 classes: full at 0.1 (F1 0.75) stays clear
    res = Results(collapse_res.root, cells, collapse_res.labels, collapse_res.datasets, collapse_res.alphas)
    t = accuracy_table(res)
    d = t.data.set_index(["label", "alpha"])
    assert d.loc[("head", "1.0"), "collapsed"] == 0 and d.loc[("head", "0.1"), "collapsed"] == 3
    assert d.loc[("head", "0.1"), "collapse_floor_macro_f1"] == pytest.approx(constant_macro_f1(0.99, 5))
    assert not any("pooled client training labels" in x for x in t.legend)


def test_every_method_is_plateau_checked(collapse_res, monkeypatch):
    """The fixture's curves gain 1% of the final accuracy in the last round: 0.9 pp for full at 1.0."""
    t = accuracy_table(collapse_res)
    assert "Plateaued: 2 of 2 methods (100%)." in t.group_notes[("bbc_news", "1.0")]
    monkeypatch.setattr(conv, "PLATEAU_PP", 0.5)
    t = accuracy_table(collapse_res)
    notes = t.display.set_index(["method", "alpha"]).notes
    assert notes[("head", "1.0")].startswith("STILL RISING: +0.9 pp")
    assert "STILL RISING" not in notes[("head", "0.1")]  # 0.14 × 1% = 0.1 pp
    assert "STILL RISING" not in notes[("full", "1.0")] and "NOT CONVERGED" in notes[("full", "1.0")]
    assert "Plateaued: 0 of 2 methods (0%); still moving: full, head." in t.group_notes[("bbc_news", "1.0")]
    assert t.data.set_index(["label", "alpha"]).last_step_pp[("head", "1.0")] == pytest.approx(0.9, abs=0.01)


def _with(res: Results, cells: pd.DataFrame, alphas=None) -> Results:
    return Results(res.root, cells.reset_index(drop=True), res.labels, res.datasets, alphas or res.alphas)


def test_duplicates_show_as_same_run_and_are_never_ranked(fixture_results):
    from fl_core.report.cd import rank_matrix
    from fl_core.report.claims import Claim, evaluate_claim

    cells = fixture_results.cells.copy()
    dup = cells.label == "lora-0.25"
    cells.loc[dup, "status"] = "duplicate"
    cells.loc[dup, "reason"] = "same run as tiny-0.25"
    cells.loc[dup, ["final_accuracy", "final_macro_f1"]] = np.nan
    res = _with(fixture_results, cells)
    t = accuracy_table(res)
    row = t.display[(t.display.method == "lora-0.25") & (t.display.alpha == "0.1")].iloc[0]
    assert row["final acc. (%)"] == row["tier"] == row["notes"] == "same run as tiny-0.25"
    assert row["seeds"] == "0/3 ok; 3 duplicate"
    assert "lora-0.25" not in t.group_notes[("bbc_news", "0.1")]  # not in any tier
    assert "lora-0.25" not in rank_matrix(res)[0].columns and "lora-0.25" not in rank_matrix(res)[2]
    claim = Claim(
        id="x", paper="p", claim="c", a="tiny-0.25", b="lora-0.25", tests=[{"metric": "final_accuracy"}]
    )
    assert evaluate_claim(res, claim)[0]["verdict"].startswith(
        "not evaluated: lora-0.25 duplicate in every seed"
    )


def test_partitions_sort_and_read():
    assert sort_partitions(["1.0", "natural:movie_name", 0.1, "iid", "0.3"]) == [
        "iid",
        "natural:movie_name",
        "0.1",
        "0.3",
        "1.0",
    ]
    assert partition_label("natural:movie_name") == "natural (movie_name)"
    assert partition_label("0.1") == "Dirichlet α = 0.1" and partition_label("iid") == "IID"
    assert least_skewed(["natural:movie_name", "0.3", "1.0"]) == "1.0"
    assert least_skewed(["natural:movie_name"]) is None and least_skewed(["0.1", "iid"]) == "iid"


def test_a_natural_partition_goes_through_tables_headline_claims_and_ranking(fixture_results):
    from fl_core.report.cd import rank_matrix
    from fl_core.report.claims import evaluate_claim, load_claims
    from fl_core.report.headline import headline_table
    from fl_core.report.tables import cost_table

    cells = fixture_results.cells.copy()
    cells["alpha"] = cells.alpha.replace({"1.0": "natural:movie_name"})
    res = _with(fixture_results, cells, ["natural:movie_name", "0.1"])
    t = accuracy_table(res)
    md = markdown(t)
    assert "### Accuracy: bbc_news, partition natural (movie_name)" in md
    assert md.index("natural (movie_name)") < md.index("Dirichlet α = 0.1")
    lines = headline_table(t.data)
    assert lines[2].startswith("| bbc_news | natural (movie_name) | full (90.0%), selective, fedtlu")
    assert cost_table(res).data.alpha.tolist()[0] == "natural:movie_name"
    for claim in load_claims(fixture_results.root.parent / "claims.yaml").claims:
        evaluate_claim(res, claim)
    assert len(rank_matrix(res)[0]) > 0


@pytest.mark.parametrize(
    ("curve", "w", "step"),
    [
        ([0.76, 0.79, 0.77, 0.80, 0.78, 0.76, 0.79], 1, 3.0),  # noise about a plateau: the last two differ
        ([0.76, 0.79, 0.77, 0.80, 0.78, 0.76, 0.79], 3, -1 / 3),  # ... the published last-3 mean barely moves
        ([0.70, 0.72, 0.74, 0.76, 0.78, 0.80, 0.82], 1, 2.0),  # a steady rise reads as one either way
        ([0.70, 0.72, 0.74, 0.76, 0.78, 0.80, 0.82], 3, 2.0),
        ([0.70, 0.72, 0.74], 3, math.nan),  # too few evaluations for a window and the step before it
    ],
)
def test_the_plateau_step_reads_the_published_window(monkeypatch, curve, w, step):
    """With ``fl.final_window`` W the plateau rule reads the published number, the mean of the last W
    evaluations: its change over the last evaluation step, (last - the evaluation W before) / W."""
    monkeypatch.setattr(conv, "mean_curve", lambda res, rows: pd.Series(curve))
    rows = pd.DataFrame({"final_window": [w, w]})
    got = conv.last_step(None, rows)
    assert got == pytest.approx(step, abs=1e-9) if math.isfinite(step) else math.isnan(got)
    assert conv.window(pd.DataFrame({"status": ["ok"]})) == 1  # a store from before the key: the last one
