"""Every panel of the report is produced as PNG and PDF, deterministically, with consistent styles."""

from __future__ import annotations

import numpy as np
import pytest

from fl_core.report import figures as F
from tests.report.test_figure_registry import ORDER

PANELS = ORDER  # the registry's report order, pinned once


def _is_png(p):
    return p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _is_pdf(p):
    b = p.read_bytes()
    return b[:5] == b"%PDF-" and b.rstrip().endswith(b"%%EOF")


def test_every_panel_is_written_as_png_and_pdf(picture_report):
    out, _, parts, _ = picture_report
    figs = parts["figures"]
    assert list(figs) == PANELS  # report order
    expected = {
        "acc_vs_round": ["acc_vs_round_bbc_news"],
        "pareto_bytes_up": ["pareto_bytes_up_bbc_news"],
        "pareto_flops": ["pareto_flops_bbc_news"],
        "blocks": ["blocks_bbc_news_a0.1", "blocks_bbc_news_a1.0"],
        "depth": ["depth_bbc_news"],  # tiny records its device classes' suffix depths
        "partition": ["partition_bbc_news_a0.1", "partition_bbc_news_a1.0"],
        "budget": ["budget_bbc_news"],  # the store has budget-family methods with a budget param
        "cd": ["cd_final_accuracy"],  # >= 3 methods and >= 5 blocks: ranked
        "tuning": [],  # no tuning record
    }
    for panel, stems in expected.items():
        names = sorted(p.name for p in figs[panel])
        assert names == sorted([f"{s}.png" for s in stems] + [f"{s}.pdf" for s in stems]), panel
        for p in figs[panel]:
            assert p.is_file() and p.stat().st_size > 2000 and p.parent == out / "figures"
            assert _is_png(p) if p.suffix == ".png" else _is_pdf(p)


def test_a_store_without_families_or_round_zero_still_draws(fixture_report):
    """The committed store predates recorded families, applied blocks and round-0 rows: every
    method is then in ``other``, and the panels that need the new fields are empty, not broken."""
    _, readme, parts = fixture_report
    figs = parts["figures"]
    assert all(figs[p] for p in ("acc_vs_round", "pareto_flops", "blocks", "partition"))
    assert figs["depth"] == [] and figs["budget"] == []
    assert "Could not draw" not in readme.read_text()


def test_pdf_has_no_timestamp(fixture_report):
    _, _, parts = fixture_report
    for p in parts["figures"]["acc_vs_round"]:
        if p.suffix == ".pdf":
            assert b"/CreationDate" not in p.read_bytes()


def test_figures_are_byte_identical_for_the_same_store(fixture_results, tmp_path):
    a = F.partitions(fixture_results, tmp_path / "a")
    b = F.partitions(fixture_results, tmp_path / "b")
    assert [p.read_bytes() for p in a] == [p.read_bytes() for p in b]


def test_budget_panel_is_skipped_without_budget_methods(fixture_results, tmp_path):
    res = fixture_results.filter(label=["full", "head", "top-2"])
    assert F.budget(res, F.StyleMap(res.labels), tmp_path) == []
    assert F.budget_rows(res).empty


def test_readme_notes_a_skipped_budget_panel(fixture_results, tmp_path):
    from fl_core.report.build import write_report

    res = fixture_results.filter(label=["full", "head"], alpha="0.1")
    readme, parts = write_report(res, tmp_path, title="t", header=[])
    assert parts["figures"]["budget"] == []
    assert "Skipped: the grid has no budget-aware methods" in readme.read_text()


def test_style_map_is_fixed_by_grid_order_and_distinct():
    labels = [f"m{i}" for i in range(12)]
    sm = F.StyleMap(labels)
    styles = [sm[x] for x in labels]
    assert len({(s.color, str(s.linestyle), s.marker) for s in styles}) == 12
    assert len({s.marker for s in styles}) == 12  # grayscale: markers alone tell them apart
    assert F.StyleMap(labels)["m3"] == sm["m3"]  # same label, same style, in every figure


def test_pareto_front():
    pts = [(1.0, 0.5), (2.0, 0.7), (3.0, 0.6), (4.0, 0.9), (2.0, 0.65)]
    assert F.pareto_front(pts) == [0, 1, 3]


def test_block_frequency_from_selections(fixture_results):
    f, names, rounds = F.block_frequency(fixture_results, "top-2", "bbc_news", "0.1")
    assert names == [f"block {i}" for i in range(6)] + ["head"] and list(rounds) == [0, 1, 2, 3]
    np.testing.assert_array_equal(f[[4, 5, 6]], 1.0)
    np.testing.assert_array_equal(f[:4], 0.0)
    head, _, _ = F.block_frequency(fixture_results, "head", "bbc_news", "0.1")
    assert head[:6].sum() == 0 and (head[6] == 1).all()


def test_partition_matrix_matches_partition_json(fixture_results):
    h = fixture_results.filter(alpha="0.1", seed=1, status="ok").cells.config_hash.iloc[0]
    counts, names = F.partition_matrix(fixture_results.partition(h))
    assert names[0] == "business" and counts.shape == (4, 5) and counts[0, 1] == 45  # (i + seed) % 5 == j


@pytest.mark.parametrize("label", ["full", "lora-0.5"])
def test_every_method_has_a_heatmap_panel(fixture_results, label):
    f, names, _ = F.block_frequency(fixture_results, label, "bbc_news", "0.1")
    assert f.shape == (7, 4)


def test_a_failing_panel_is_reported_and_the_rest_still_drawn(fixture_results, tmp_path, monkeypatch):
    from fl_core.report.build import write_report

    def boom(*a, **k):
        raise RuntimeError("injected figure fault")

    monkeypatch.setattr(F, "partitions", boom)
    res = fixture_results.filter(label=["full", "head"], alpha="0.1")
    readme, parts = write_report(res, tmp_path, title="t", header=[])
    assert parts["figures"]["partition"] == [] and parts["figures"]["acc_vs_round"]
    assert "**Could not draw this panel**: `RuntimeError: injected figure fault`" in readme.read_text()


def test_depth_skips_a_dataset_none_of_whose_budget_cells_ran(picture_store, tmp_path):
    """A grid in progress: a dataset without budget-method rows yet gets no depth figure, no error."""
    from dataclasses import replace

    from fl_core.report.fig_updates import depth
    from fl_core.report.load import load_results
    from fl_core.report.panels import style_map

    res = load_results(picture_store)
    res = replace(res, datasets=[*res.datasets, "rotten_tomatoes"])
    written = depth(res, style_map(res), tmp_path)
    assert sorted(p.name for p in written) == ["depth_bbc_news.pdf", "depth_bbc_news.png"]
