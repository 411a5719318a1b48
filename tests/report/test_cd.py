"""Friedman test + critical-difference diagram over the golden fixture store (autorank)."""

from __future__ import annotations

import dataclasses
import re

import pandas as pd
import pytest
from scipy import stats

from fl_core.report.cd import complete_blocks, rank, rank_matrix, section
from fl_core.report.gallery import PANELS, Inputs


def test_friedman_p_matches_scipy_and_the_diagram_is_drawn(fixture_results, tmp_path):
    m, what, dropped, blocks = rank_matrix(fixture_results)
    assert "seed" in what and len(m) == 6  # 2 cells only: (dataset, alpha, seed) blocks
    assert {"selective", "head"} <= set(dropped) and "full" in m.columns and not m.isna().any().any()
    assert blocks == []
    inputs = Inputs(fixture_results, tmp_path)
    lines = section(rank(fixture_results), PANELS["cd"].draw(inputs))
    text = "\n".join(lines)
    p = float(re.search(r"Friedman test \(autorank\): p = ([0-9.e+-]+)", text).group(1))
    assert p == pytest.approx(stats.friedmanchisquare(*[m[c] for c in m.columns]).pvalue, rel=1e-2)
    assert "Mean ranks (1 = best): full 1.00" in text  # full has the highest accuracy in every block
    assert (tmp_path / "figures" / "cd_final_accuracy.png").stat().st_size > 1000
    pdf = (tmp_path / "figures" / "cd_final_accuracy.pdf").read_bytes()
    assert b"/CreationDate" not in pdf and b"/Producer" not in pdf  # the same ranks, the same bytes
    assert "![critical-difference diagram](figures/cd_final_accuracy.png)" in text


def test_a_diagram_that_fails_is_said_and_the_ranking_still_shown(fixture_results):
    text = "\n".join(section(rank(fixture_results), [], "RuntimeError: no font"))
    assert "Mean ranks (1 = best)" in text and text.endswith("(CD diagram not drawn: RuntimeError: no font)")


def test_too_few_blocks_is_said_not_ranked(fixture_results, tmp_path):
    res = fixture_results.filter(alpha="0.1", label=["full", "top-2", "fedtlu"])
    drawn = PANELS["cd"].draw(Inputs(res, tmp_path))
    assert any(x.startswith("Not ranked") for x in section(rank(res), drawn))
    assert drawn == [] and not list(tmp_path.rglob("*.png"))


def test_a_grid_in_progress_leaves_out_the_blocks_not_run_yet_not_the_methods():
    """Blocks where only the first method has run (a sweep in progress) go; a method that never fits
    goes; everything else stays."""
    nan = float("nan")
    rows = {(f"b{i}",): {"full": 0.9, "head": 0.8, "top-2": 0.85, "never": nan} for i in range(6)}
    rows[("started",)] = {"full": 0.7, "head": nan, "top-2": nan, "never": nan}
    m = pd.DataFrame.from_dict(rows, orient="index")
    kept, methods, blocks = complete_blocks(m)
    assert methods == ["never"] and blocks == [("started",)]
    assert list(kept.columns) == ["full", "head", "top-2"] and len(kept) == 6 and not kept.isna().any().any()


def test_an_lm_grid_is_ranked_by_perplexity_lowest_first(fixture_results):
    """No cell records accuracy: the ranking is by final perplexity, rank 1 = the lowest."""
    from fl_core.report.cd import ranked_metric

    cells = fixture_results.cells.copy()
    ok = cells.status == "ok"
    cells["final_perplexity"] = float("nan")
    cells.loc[ok, "final_perplexity"] = 100 * (
        1.5 - cells.loc[ok, "final_accuracy"].astype(float)
    )  # full: lowest
    cells["final_accuracy"] = float("nan")
    res = dataclasses.replace(fixture_results, cells=cells)
    assert ranked_metric(fixture_results) == "final_accuracy" and ranked_metric(res) == "final_perplexity"
    text = "\n".join(rank(res, "final_perplexity").lines)
    assert "ranked by final_perplexity" in text and "Mean ranks (1 = best): full 1.00" in text
