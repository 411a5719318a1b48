"""The figure registry: every panel registers once, with a title and a draw function; the report
draws, lists and thumbnails exactly the registered panels, the CD diagram included."""

from __future__ import annotations

import re

import pytest

from fl_core.report import gallery
from fl_core.report.figure_registry import panel
from fl_core.report.gallery import PANELS, Inputs, all_figures

ORDER = [
    "acc_vs_round",
    "pareto_bytes_up",
    "pareto_flops",
    "blocks",
    "depth",
    "partition",
    "budget",
    "cd",
    "tuning",
]


def _regex(stems: str) -> str:
    """A panel's stem pattern as a regex: ``<value>`` any text, ``[…]`` optional."""
    parts = re.split(r"(<[^>]+>|\[|\])", stems)
    return "".join({"[": "(?:", "]": ")?"}.get(t, ".+" if t.startswith("<") else re.escape(t)) for t in parts)


def test_every_panel_has_a_title_a_draw_function_and_a_stem_pattern():
    assert list(PANELS) == ORDER  # report order
    titles = [p.title for p in PANELS.values()]
    assert all(titles) and len(set(titles)) == len(titles)
    for name, p in PANELS.items():
        assert p.name == name and callable(p.draw) and p.stems.startswith(name)
        assert p.if_empty is not None


def test_a_second_panel_of_the_same_name_is_an_error():
    before = dict(PANELS)
    with pytest.raises(ValueError, match="'cd' is registered twice: fl_core.report.gallery._cd and"):
        panel("cd", "Another CD diagram", "cd_<metric>")(lambda i: [])
    assert before == PANELS


def test_a_panel_needs_a_title_and_a_draw_function():
    with pytest.raises(ValueError, match="needs a title"):
        panel("untitled", "", "untitled_<dataset>")(lambda i: [])
    with pytest.raises(ValueError, match="needs a title"):
        panel("undrawn", "A title", "undrawn_<dataset>")(None)
    assert "untitled" not in PANELS and "undrawn" not in PANELS


def test_the_stem_pattern_regex():
    rx = _regex("tuning_<dataset>[_<partition>]")
    assert re.fullmatch(rx, "tuning_bbc_news") and re.fullmatch(rx, "tuning_bbc_news_natural-src")
    assert not re.fullmatch(rx, "cd_final_accuracy")


def test_every_file_a_panel_writes_matches_its_stem_pattern(picture_report):
    _, _, parts, _ = picture_report
    assert parts["figures"]["cd"]
    for name, paths in parts["figures"].items():
        for p in paths:
            assert re.fullmatch(_regex(PANELS[name].stems), p.stem), (name, p.name)


def test_the_readme_lists_the_drawn_panels_under_their_registered_titles(fixture_report):
    _, readme, parts = fixture_report
    text = readme.read_text()
    listing = text[text.index("\n## Figures") : text.index("\n## Ranking across cells")]
    for name in parts["figures"]:
        # no tuning record: the learning-rate section says so, the figure list leaves it out
        assert (f"### {PANELS[name].title}" in listing) == (name != "tuning"), name
    # the CD has its own section: the list links there, and the README shows the diagram once
    assert (
        "In [Ranking across cells (Friedman, critical difference)](#ranking-across-cells-friedman-critical-difference)"
        in listing
    )
    assert text.count("(figures/cd_final_accuracy.png)") == 1


def test_the_contact_sheet_shows_the_cd_diagram(fixture_results, tmp_path, monkeypatch):
    sheets: list[list] = []
    real = gallery.contact_sheet
    monkeypatch.setattr(gallery, "contact_sheet", lambda pngs, out: sheets.append(pngs) or real(pngs, out))
    figures = all_figures(Inputs(fixture_results, tmp_path))
    cd_png = tmp_path / "figures" / "cd_final_accuracy.png"
    assert figures["cd"] == [cd_png, cd_png.with_suffix(".pdf")]
    assert len(sheets) == 1 and cd_png in sheets[0]
    assert sheets[0] == [p for ps in figures.values() for p in ps if p.suffix == ".png"]  # report order
    assert (tmp_path / "figures" / "index.png").stat().st_size > 20_000
