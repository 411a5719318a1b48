import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from fl_core.store import ResultStore, StoreError
from fl_core.sweep import run_sweep
from fl_core.validate import parse_grid
from tests.conftest import tiny_cell, tiny_grid_dict


def test_write_is_atomic_and_verified(tmp_path):
    store = ResultStore(tmp_path)
    cell = tiny_cell()
    assert not store.is_done(cell.hash())
    store.write(cell, {"status": "ok"}, {"rounds": [{"round": 0, "accuracy": 0.5}]}, {"partition": {}})
    assert store.is_done(cell.hash())
    assert not list(store.runs.glob(".tmp-*"))
    # corrupt a file: the checksum catches it and the cell counts as not done
    (store.path(cell.hash()) / "rounds.csv").write_text("round,accuracy\n0,0.99\n")
    assert not store.is_done(cell.hash())
    store.write(cell, {"status": "ok"}, {"rounds": [{"round": 0, "accuracy": 0.5}]}, {})
    assert store.is_done(cell.hash())


def test_failed_cells_are_kept_but_not_done(tmp_path):
    store = ResultStore(tmp_path)
    cell = tiny_cell()
    store.write(cell, {"status": "failed", "reason": "boom"}, {}, {})
    assert store.verify(cell.hash()) and not store.is_done(cell.hash())


def test_unwritable_results_dir_fails_before_training(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    os.chmod(ro, 0o500)
    try:
        if os.access(ro, os.W_OK):  # running as root: permissions do not bind
            pytest.skip("root ignores directory permissions")
        with pytest.raises(StoreError, match="not writable"):
            ResultStore(ro / "results").check_writable()
    finally:
        os.chmod(ro, 0o700)


def test_store_rejects_a_file_where_the_dir_should_be(tmp_path):
    (tmp_path / "results").write_text("not a dir")
    with pytest.raises(StoreError, match="not writable"):
        ResultStore(tmp_path / "results").check_writable()


def test_sweep_records_statuses_and_resumes(tmp_path):
    grid = parse_grid(tiny_grid_dict(tmp_path, methods=[{"name": "full"}, {"name": "head"}], seeds=[0, 1]))
    rep = run_sweep(grid, progress=False)
    assert (rep.total, rep.ran, rep.statuses) == (4, 4, {"ok": 4})
    again = run_sweep(grid, progress=False)
    assert (again.skipped_done, again.ran) == (4, 0)
    res = ResultStore(grid.output_dir).load_result(grid.cells()[0].hash())
    assert res["config_hash"] == grid.cells()[0].hash()
    assert {"torch", "transformers"} <= set(res["versions"]) and res["git_revision"]


def test_result_records_the_torch_threads_it_ran_with(tmp_path):
    """Float sums differ across thread counts, so each result says how many threads made it."""
    import torch

    before = torch.get_num_threads()
    grid = parse_grid(
        {**tiny_grid_dict(tmp_path, methods=[{"name": "head"}], seeds=[0]), "threads_per_cell": 1}
    )
    try:
        run_sweep(grid, progress=False)
    finally:
        torch.set_num_threads(before)
    assert ResultStore(grid.output_dir).load_result(grid.cells()[0].hash())["torch_threads"] == 1


def test_killed_sweep_resumes_and_runs_only_the_rest(tmp_path):
    """SIGKILL a real sweep process after its first cell; the restart runs only the rest."""
    cfg = tmp_path / "grid.yaml"
    grid_d = tiny_grid_dict(
        tmp_path,
        methods=[{"name": "full"}, {"name": "head"}, {"name": "top_k", "params": {"k": 1}}],
        seeds=[0, 1],
    )
    grid_d["fl"]["rounds"] = 3
    cfg.write_text(yaml.safe_dump(grid_d))
    runs = Path(grid_d["output_dir"]) / "runs"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "fl_core.cli", "sweep", str(cfg), "--no-progress"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.time() + 120
    while time.time() < deadline and not list(runs.glob("[!.]*/MANIFEST.json")):
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    done_before = len(list(runs.glob("[!.]*/MANIFEST.json")))
    assert 1 <= done_before < 6, "the kill should land after the first cell and before the last"
    grid = parse_grid(grid_d)
    rep = run_sweep(grid, progress=False)
    assert rep.skipped_done == done_before and rep.ran == 6 - done_before
    assert all(ResultStore(grid.output_dir).is_done(c.hash()) for c in grid.cells())
    assert not list(runs.glob(".tmp-*"))


def test_a_cell_that_crashes_is_recorded_and_the_sweep_goes_on(tmp_path, monkeypatch):
    import fl_core.simulator as sim

    real = sim.run_cell

    def flaky(cell, **kw):
        if cell.method.name == "head":
            raise RuntimeError("injected fault")
        return real(cell, **kw)

    monkeypatch.setattr(sim, "run_cell", flaky)
    grid = parse_grid(tiny_grid_dict(tmp_path))
    rep = run_sweep(grid, progress=False)
    assert rep.statuses == {"ok": 1, "failed": 1} and "injected fault" in rep.failed[0]
    from fl_core.report.summary import write_summary

    md = write_summary(grid, "grid.yaml").read_text()
    assert "injected fault" in md
    res = json.loads((ResultStore(grid.output_dir).path(grid.cells()[1].hash()) / "result.json").read_text())
    assert res["status"] == "failed"


def test_finished_at_is_when_the_cell_finished(monkeypatch):
    """The result's finished_at is stamped after the run, not when the cell started."""
    import time

    from fl_core import cell as cell_mod

    run, ends = cell_mod.simulator.run_cell, []

    def slow_run(*a, **kw):
        time.sleep(1.1)  # finished_at has 1 s resolution
        out = run(*a, **kw)
        ends.append(time.strftime("%Y-%m-%dT%H:%M:%S"))
        return out

    monkeypatch.setattr(cell_mod.simulator, "run_cell", slow_run)
    started = time.strftime("%Y-%m-%dT%H:%M:%S")
    result, _, _ = cell_mod.execute_cell(tiny_cell("head"), progress=False)
    assert result["status"] == "ok" and result["finished_at"] >= ends[0] > started
