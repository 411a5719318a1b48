"""Friedman test + critical-difference diagram over the golden fixture store (autorank)."""

from __future__ import annotations

import re

import pytest
from scipy import stats

from fl_core.report.cd import friedman_cd, rank_matrix


def test_friedman_p_matches_scipy_and_the_diagram_is_drawn(fixture_results, tmp_path):
    m, what, dropped = rank_matrix(fixture_results)
    assert "seed" in what and len(m) == 6  # 2 cells only: (dataset, alpha, seed) blocks
    assert {"selective", "head"} <= set(dropped) and "full" in m.columns and not m.isna().any().any()
    lines = friedman_cd(fixture_results, tmp_path / "figures")
    text = "\n".join(lines)
    p = float(re.search(r"Friedman test \(autorank\): p = ([0-9.e+-]+)", text).group(1))
    assert p == pytest.approx(stats.friedmanchisquare(*[m[c] for c in m.columns]).pvalue, rel=1e-2)
    assert "Mean ranks (1 = best): full 1.00" in text  # full has the highest accuracy in every block
    assert (tmp_path / "figures" / "cd_final_accuracy.png").stat().st_size > 1000


def test_too_few_blocks_is_said_not_ranked(fixture_results, tmp_path):
    res = fixture_results.filter(alpha="0.1", label=["full", "top-2", "fedtlu"])
    lines = friedman_cd(res, tmp_path)
    assert any(x.startswith("Not ranked") for x in lines) and not list(tmp_path.glob("*.png"))
