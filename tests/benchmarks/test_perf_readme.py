"""The shared results/perf/README.md writer: a section is replaced in place, the others are kept."""

from __future__ import annotations

from pathlib import Path

import pandas as pd


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


def test_speed_steps_only_replaces_its_rows(tmp_path: Path, load_bench) -> None:
    steps = load_bench("speed_steps")
    previous = tmp_path / "perf_steps.csv"
    old = pd.DataFrame(
        {
            "step": ["tokenize", "prefix_cache", "prefix_cache", "eval_no_grad", "threads"],
            "speedup": [9, 1, 1, 2, 3],
        }
    )
    old.to_csv(previous, index=False)
    new = pd.DataFrame({"step": ["prefix_cache"] * 3, "speedup": [5, 6, 7], "measured": "today"})
    merged = steps.merge_rows(new, ["prefix_cache"], previous)
    assert list(merged.step) == ["tokenize", *["prefix_cache"] * 3, "eval_no_grad", "threads"]
    assert list(merged.speedup) == [9, 5, 6, 7, 2, 3]
    assert list(merged.measured) == ["earlier run", "today", "today", "today", "earlier run", "earlier run"]
    assert steps.merge_rows(new, None, previous).equals(new)  # a full run keeps only its own rows


def test_one_blank_line_between_sections(tmp_path: Path, load_bench) -> None:
    perf_readme = load_bench("perf_readme")
    readme = tmp_path / "README.md"
    for name in ("a", "b", "a"):
        perf_readme.write_section(readme, name, perf_readme.section(name, "run", "table"))
    assert "\n\n\n" not in readme.read_text()
