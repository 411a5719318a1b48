"""The shared results/perf/README.md writer: a section is replaced in place, the others are kept."""

from __future__ import annotations

from pathlib import Path


def test_section_layout_and_replacement(tmp_path: Path, load_bench) -> None:
    perf_readme = load_bench("perf_readme")
    section, write_section = perf_readme.section, perf_readme.write_section

    assert section("ray", "run", "table") == ["## ray", "", "run", "", "table", ""]
    assert section("grid", "run", seconds=12.4)[0] == "## grid (12 s)"
    readme = tmp_path / "README.md"
    write_section(readme, "a", section("a", "first"))
    write_section(readme, "b", section("b", "second"))
    write_section(readme, "a", section("a", "replaced", seconds=3))
    text = readme.read_text()
    assert text.startswith("# Simulator speed")
    assert "first" not in text and text.index("## a (3 s)") < text.index("replaced") < text.index("## b")
    assert text.count("## a") == 1 and "second" in text
