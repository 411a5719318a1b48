"""A language-modeling grid on tiny-llama (RANDOM WEIGHTS) through the report: a perplexity table,
ranked lowest first, and paired claims that read perplexity as lower-is-better."""

from __future__ import annotations

import pytest
import yaml

from fl_core.metrics import CLAIMABLE, PRIMARY
from fl_core.report.lm_table import lm_table, rank_within
from fl_core.report.stats import paired_test
from tests.conftest import TINY_FL, tiny_grid_dict


@pytest.fixture(scope="module")
def lm_results(tmp_path_factory):
    from fl_core.report.load import load_results
    from fl_core.sweep import run_sweep
    from fl_core.validate import parse_grid

    root = tmp_path_factory.mktemp("lm")
    raw = tiny_grid_dict(
        root,
        model="tiny-llama",
        datasets=["bbc_news_lm"],
        fl={**TINY_FL.model_dump(), "rounds": 1},
        methods=[{"name": "full"}, {"name": "head"}],
    )
    cfg = root / "lm.yaml"
    cfg.write_text(yaml.safe_dump(raw))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LAYERBENCH_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))
        grid = parse_grid(raw, str(cfg))
        assert run_sweep(grid, progress=False).statuses == {"ok": 2}
    return grid, cfg, load_results(grid.output_dir, grid=grid)


def test_lm_table_ranks_lowest_perplexity_first(lm_results):
    t = lm_table(lm_results[2])
    assert t is not None and set(t.data.label) == {"full", "head"}
    best = t.data.sort_values(f"{PRIMARY['lm']}_mean").iloc[0]
    assert best["rank"] == 1 and t.data["rank"].max() == 2
    assert "lower is better" in " ".join(t.display.columns)


def test_rank_follows_the_declared_direction(lm_results):
    t = lm_table(lm_results[2])
    flipped = t.data.assign(**{f"{PRIMARY['lm']}_mean": -t.data[f"{PRIMARY['lm']}_mean"]})
    assert (rank_within(flipped, PRIMARY["lm"]) != t.data["rank"]).all()
    # "a is not worse than b" on perplexity: a claim reads the direction from the metric declaration
    a, b = [10.0, 11.0, 12.0], [12.0, 13.5, 14.0]
    as_declared = paired_test(a, b, "noninferior", 0.5, CLAIMABLE[PRIMARY["lm"]])
    as_if_higher = paired_test(a, b, "noninferior", 0.5, True)
    assert as_declared.p_t < 0.05 < as_if_higher.p_t


def test_the_report_of_an_lm_grid_has_the_perplexity_table(lm_results, tmp_path):
    from fl_core.report import build_report

    grid, cfg, _ = lm_results
    readme = build_report(grid, cfg, out_dir=tmp_path, wandb=False)
    assert (tmp_path / "tables" / "lm.md").stat().st_size > 0
    text = readme.read_text()
    assert "perplexity" in text
    # no empty accuracy table, no misleading "no finished seed", the ranking by perplexity
    assert not (tmp_path / "tables" / "accuracy.md").exists() and "### Accuracy\n" not in text
    assert "no target: a language-modeling task" in text and "has no finished seed" not in text
    assert "Methods ranked by final_perplexity" in text


def test_lm_table_has_tiers_on_perplexity(lm_results):
    t = lm_table(lm_results[2])
    assert "tier" in t.display.columns and t.data["tier"].notna().any()
    assert any("perplexity, pairs = same seed" in x for x in t.legend)
    assert not any("pp" in x and "MDE" in x for x in t.legend)  # no percentage-point limit for perplexity
