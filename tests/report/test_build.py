"""End to end: a real (tiny-bert) sweep's store → `layerbench report` → README, tables, figures, claims."""

from __future__ import annotations

import pytest

from fl_core.report.build import report_dir
from fl_core.validate import parse_grid


def test_report_dir_rule(tmp_path):
    base = {
        "model": "tiny-bert",
        "datasets": ["bbc_news"],
        "alphas": [1.0],
        "seeds": [0],
        "methods": [{"name": "full"}],
    }
    assert (
        report_dir(parse_grid({**base, "name": "default", "output_dir": "results"})).as_posix() == "results"
    )
    assert (
        report_dir(parse_grid({**base, "name": "paper_a", "output_dir": "results"})).as_posix()
        == "results/paper_a"
    )
    assert (
        report_dir(parse_grid({**base, "name": "smoke", "output_dir": "results/smoke"})).as_posix()
        == "results/smoke"
    )
    assert (
        report_dir(parse_grid({**base, "name": "runs", "output_dir": "results"})).as_posix()
        == "results/report-runs"
    )
    # a grid that says where (configs/reference.yaml: the published answer in results/ itself)
    grid = parse_grid({**base, "name": "reference", "output_dir": "results", "report_dir": "results"})
    assert report_dir(grid).as_posix() == "results"


def test_a_report_links_the_reports_published_below_it(tmp_path):
    from fl_core.report.build import _other_reports

    (tmp_path / "default").mkdir()
    (tmp_path / "default" / "README.md").write_text("# Results: grid `default`\n\nquick look\n")
    (tmp_path / "perf").mkdir()
    (tmp_path / "perf" / "README.md").write_text("# Simulator speed and memory\n")
    (tmp_path / "figures").mkdir()  # no README: not a report
    lines = _other_reports(tmp_path)
    assert "- [`default/`](default/README.md): Results: grid `default`" in lines
    assert "- [`perf/`](perf/README.md): Simulator speed and memory" in lines
    assert not any("figures" in x for x in lines)
    assert _other_reports(tmp_path / "default") == []


def test_a_report_never_links_a_folder_git_ignores(tmp_path):
    """A smoke run's folder is ignored by git: a published page linking it would point nowhere in a clone."""
    import shutil
    import subprocess

    from fl_core.report.build import _other_reports

    if shutil.which("git") is None:
        pytest.skip("needs git")
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    (tmp_path / ".gitignore").write_text("smoke/\n")
    for name in ("smoke", "perf"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "README.md").write_text(f"# {name}\n")
    lines = _other_reports(tmp_path)
    assert any("perf/" in x for x in lines) and not any("smoke" in x for x in lines)


@pytest.fixture(scope="module")
def smoke_report(smoke_grid):
    """`layerbench report <config>` on the smoke store, with W&B importable by nobody (the grid says off)."""
    import sys

    from fl_core.cli import main

    grid, cfg = smoke_grid
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(sys.modules, "wandb", None)  # any import of wandb would raise
        rc = main(["report", str(cfg)])
    return rc, report_dir(grid)


def test_cli_report_rebuilds_everything_from_the_store(smoke_grid, smoke_report):
    grid, cfg = smoke_grid
    rc, out = smoke_report
    assert rc == 0
    readme = (out / "README.md").read_text()
    assert f"layerbench report {cfg.as_posix()}" in readme and "git revision of the report code" in readme
    assert "RANDOM weights" in readme  # tiny-bert is labelled as such
    assert "| top-1 | k=1 | 1/1 ok |" in readme  # the accuracy table is embedded
    for stem in (
        "acc_vs_round_bbc_news",
        "pareto_flops_bbc_news",
        "blocks_bbc_news_a1.0",
        "partition_bbc_news_a1.0",
    ):
        assert f"](figures/{stem}.png)" in readme and (out / "figures" / f"{stem}.png").is_file()
        assert (out / "figures" / f"{stem}.pdf").is_file()
    assert "Skipped: the grid has no budget-aware methods" in readme
    for name in ("accuracy", "cost"):
        for ext in ("csv", "md", "tex"):
            assert (out / "tables" / f"{name}.{ext}").stat().st_size > 0
    claims = (out / "claims.md").read_text()  # the default claims: nothing of this grid matches
    assert "not evaluated: fedtlu not in grid" in claims
    assert (out.parent / f"summary_{grid.name}.md").is_file()  # the quick summary is kept up to date too


def test_same_store_same_report(smoke_grid, smoke_report, tmp_path):
    from fl_core.report import build_report

    grid, cfg = smoke_grid
    _, a = smoke_report
    b = build_report(grid, cfg, out_dir=tmp_path, wandb=False).parent
    files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    assert len(files) > 15
    for f in files:
        assert (a / f).read_bytes() == (b / f).read_bytes(), f"{f} differs between two builds"


def test_missing_cells_are_listed(smoke_grid):
    from fl_core.report.load import load_results
    from fl_core.report.tables import accuracy_table

    grid, _ = smoke_grid
    bigger = grid.model_copy(update={"seeds": [0, 7]})
    res = load_results(bigger.output_dir, grid=bigger)
    assert list(res.cells.status).count("missing") == 2
    notes = accuracy_table(res).display.notes
    assert notes.str.contains("seed 7: missing \\(not run yet").all()
    from fl_core.report.build import _readme_head

    head = "\n".join(_readme_head(res, "t", []))
    assert "**Grid in progress: 2 of 4 cells finished.**" in head
    assert "in progress" not in "\n".join(_readme_head(load_results(grid.output_dir, grid=grid), "t", []))
