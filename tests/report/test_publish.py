"""Published results survive without raw runs, and are never replaced by fewer cells."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from fl_core.cli import main
from fl_core.compact import COMPACT, read_compact
from fl_core.report.build import build_report, report_dir
from fl_core.report.load import load_results
from fl_core.report.publish import PublishRefused
from fl_core.validate import parse_grid
from tests.conftest import tiny_grid_dict

REPO = Path(__file__).resolve().parents[2]


def _snapshot(d: Path) -> dict[str, bytes]:
    return {p.relative_to(d).as_posix(): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    """A 2-cell grid swept by the CLI (what `make bench` runs), which publishes its report:
    (grid, config path, report dir)."""
    root = tmp_path_factory.mktemp("pub")
    raw = tiny_grid_dict(root)
    cfg = root / "t.yaml"
    cfg.write_text(yaml.safe_dump(raw))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LAYERBENCH_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))
        grid = parse_grid(raw, str(cfg))
        assert main(["sweep", str(cfg), "--no-progress"]) == 0
    return grid, cfg, report_dir(grid)


def _copy(published, tmp_path):
    """The published grid in a fresh folder (a 'clone'), with or without its raw runs."""
    grid, cfg, out = published
    src = Path(grid.output_dir)
    dst = tmp_path / "results"
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("checkpoints", ".sweep.*"))
    raw = {**yaml.safe_load(cfg.read_text()), "output_dir": str(dst)}
    new_cfg = tmp_path / "t.yaml"
    new_cfg.write_text(yaml.safe_dump(raw))
    g = parse_grid(raw, str(new_cfg))
    return g, new_cfg, report_dir(g)


def test_a_sweep_report_writes_the_compact_copy(published):
    grid, _, out = published
    t = read_compact(out / COMPACT)
    assert set(t.config_hash) == {c.hash() for c in grid.cells()}
    files = set(t.file)
    assert {"rounds.csv", "costs.csv", "selections.csv", "partition.json", "result.json"} <= files
    assert (out / COMPACT).stat().st_size < 1_000_000


def test_a_fresh_clone_sweep_resumes_from_the_published_cells(published, tmp_path, monkeypatch):
    """The raw runs are not in git: a sweep in a clone puts the published cells back (verified, the
    same bytes) and runs none of them again; a damaged raw copy is replaced the same way."""
    import fl_core.sweep as sweep_mod

    grid, cfg, out = _copy(published, tmp_path)
    runs = Path(grid.output_dir) / "runs"
    before = _snapshot(runs)
    shutil.rmtree(runs)  # what a fresh clone has
    h = grid.cells()[0].hash()
    runs.mkdir()
    shutil.copytree(Path(published[0].output_dir) / "runs" / h, runs / h)
    (runs / h / "rounds.csv").write_text("damaged")

    def no_training(*a, **k):
        raise AssertionError("a published cell ran again")

    monkeypatch.setattr(sweep_mod, "execute_cell", no_training)
    assert main(["sweep", str(cfg), "--no-progress"]) == 0
    assert _snapshot(runs) == before


def test_a_fresh_clone_of_a_published_grid_needs_no_ray_and_rebuilds_the_same_bytes(
    published, tmp_path, monkeypatch
):
    """Every cell published: a sweep on Ray restores them, starts no backend (Ray is not even installed),
    and each rebuild of the report, the compact copy and the summary gives the same bytes."""
    import fl_core.sweep as sweep_mod

    def boom(*a, **k):
        raise AssertionError("a backend was started for a grid with nothing to run")

    monkeypatch.setattr("fl_core.ray_backend.ray_installed", lambda: False)
    monkeypatch.setattr(sweep_mod, "run_cells_ray", boom)
    monkeypatch.setattr(sweep_mod, "execute_cell", boom)
    grid, cfg, out = _copy(published, tmp_path)
    snapshots = []
    for _ in range(2):
        shutil.rmtree(Path(grid.output_dir) / "runs")  # what a fresh clone has
        assert main(["sweep", str(cfg), "--backend", "ray", "--no-progress"]) == 0
        snapshots.append(_snapshot(Path(grid.output_dir)) | _snapshot(out))
    assert snapshots[0] == snapshots[1]
    assert COMPACT in snapshots[0] and any(k.endswith(".pdf") for k in snapshots[0])


def test_without_raw_runs_the_report_is_kept_and_rebuilds_identically_with_force(published, tmp_path):
    grid, cfg, out = _copy(published, tmp_path)
    before = _snapshot(out)
    shutil.rmtree(Path(grid.output_dir) / "runs")  # what a fresh clone has
    build_report(grid, cfg, wandb=False)
    assert _snapshot(out) == before, "an up-to-date published report was rewritten"
    build_report(grid, cfg, wandb=False, force=True)
    after = _snapshot(out)
    tables = [k for k in before if k.startswith("tables/") and k.endswith(".csv")]
    assert tables and all(after[k] == before[k] for k in tables), "the compact copy lost data"
    assert after[COMPACT] == before[COMPACT]
    assert "compact copy" in (out / "README.md").read_text()
    summary = (Path(grid.output_dir) / f"summary_{grid.name}.md").read_text()
    assert "missing" not in summary


def test_load_results_and_notebook_view_read_the_compact_copy(published, tmp_path):
    grid, _, out = _copy(published, tmp_path)
    shutil.rmtree(Path(grid.output_dir) / "runs")
    res = load_results(out)
    assert sorted(res.cells.status) == ["ok", "ok"]
    h = res.cells.config_hash.iloc[0]
    assert not res.table(h, "rounds").empty and res.partition(h)


def test_fewer_cells_never_replace_a_published_report(published, tmp_path, capsys):
    grid, cfg, out = _copy(published, tmp_path)
    (out / COMPACT).unlink()  # a report published before compact copies: only its cells file
    shutil.rmtree(Path(grid.output_dir) / "runs" / grid.cells()[1].hash())
    before = _snapshot(out)
    with pytest.raises(PublishRefused, match="not replacing the published report"):
        build_report(grid, cfg, wandb=False)
    assert main(["report", str(cfg), "--no-wandb"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--force" in err and "Traceback" not in err
    assert _snapshot(out) == before
    assert main(["report", str(cfg), "--no-wandb", "--force"]) == 0
    assert "cells: 2 (missing 1, ok 1)" in (out / "README.md").read_text()


def test_run_of_one_cell_never_rewrites_the_published_report(published, tmp_path, capsys):
    grid, cfg, out = _copy(published, tmp_path)
    summary = Path(grid.output_dir) / f"summary_{grid.name}.md"
    before, before_summary = _snapshot(out), summary.read_bytes()
    shutil.rmtree(Path(grid.output_dir) / "runs" / grid.cells()[0].hash())
    assert main(["run", str(cfg), "--method", "full", "--no-progress"]) == 0
    assert "left as is" in capsys.readouterr().out
    assert _snapshot(out) == before and summary.read_bytes() == before_summary


@pytest.mark.slow  # `make check-clone` (CI) runs it
def test_fresh_clone_report_leaves_results_clean(tmp_path):
    """`make report` in a `git clone` of this repo changes nothing under results/."""
    if not (REPO / ".git").exists():
        pytest.skip("not a git checkout")
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(REPO), str(clone)], check=True)
    env = {**os.environ, "PYTHONPATH": str(clone), "WANDB_MODE": "offline"}
    p = subprocess.run(
        [sys.executable, "-m", "fl_core.cli", "report", "configs/default.yaml"],
        cwd=clone,
        env=env,
        capture_output=True,
        text=True,
    )
    published = (clone / "results" / "default" / COMPACT).is_file()
    if published:
        assert p.returncode == 0, p.stderr
    else:  # the default grid's compact copy is not committed yet: the report refuses, in one line
        assert p.returncode == 1 and "not replacing the published report" in p.stderr, p.stderr
        assert "Traceback" not in p.stderr
    status = subprocess.run(
        ["git", "status", "--porcelain", "results"], cwd=clone, capture_output=True, text=True, check=True
    )
    assert status.stdout == "", status.stdout
