"""Issue 25, store and sweep items: the line before every sweep and ``--dry-run``, a damaged cell named
with what was done, ``report`` under the store lock, a second sweep refused before torch loads, a
resumed cell saying so, and storage errors naming the real cause."""

from __future__ import annotations

import errno
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from fl_core.cli import main
from fl_core.compact import COMPACT, write_compact
from fl_core.estimate import Probe, cell_work, estimate_s
from fl_core.faults import StorageFault
from fl_core.report.publish import report_dir
from fl_core.simulator import Checkpoint, run_cell
from fl_core.store import ResultStore
from fl_core.sweep import run_sweep
from fl_core.validate import load_grid
from tests.conftest import tiny_cell, tiny_grid_dict

REPO = Path(__file__).resolve().parents[1]


def _cfg(tmp_path, **over) -> Path:
    cfg = tmp_path / "g.yaml"
    cfg.write_text(yaml.safe_dump(tiny_grid_dict(tmp_path, **over)))
    return cfg


def _warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


def test_cell_work_counts_steps_and_evaluated_rows():
    cell = tiny_cell()  # 200 train rows, 4 clients, batch 8: 7 batches per client, capped at 2 steps
    steps, rows = cell_work(cell)
    assert steps == 2 * 2 * 2  # rounds x clients_per_round x local_steps
    assert rows == 2 * (2 + 1) * 50  # (global + personal) x (2 evaluations + the start) x 50 test rows
    uncapped = cell.model_copy(update={"fl": cell.fl.model_copy(update={"local_steps": None})})
    assert cell_work(uncapped)[0] == 2 * 2 * 7
    p = Probe(step_s=0.5, row_eval_s=0.01, build_s=2.0, precision="fp32", threads=1)
    assert estimate_s([cell, cell], p) == pytest.approx(2 * (2.0 + 8 * 0.5 + 300 * 0.01))
    assert estimate_s([cell, cell], p, parallel=2) == pytest.approx(2.0 + 8 * 0.5 + 300 * 0.01)


def test_dry_run_prints_cells_and_an_estimate_and_writes_nothing(tmp_path, capsys):
    assert main(["sweep", str(_cfg(tmp_path)), "--dry-run", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "sweep t: 2 cells to run, 0 to restore from" in out and "0 already done" in out
    assert "estimated wall time on this machine:" in out and "batch 8 x 16" in out
    assert out.count("would run ") == 2
    assert not (tmp_path / "results").exists()


def test_every_sweep_logs_its_plan_first(tmp_path, caplog):
    grid = load_grid(_cfg(tmp_path))
    with caplog.at_level(logging.INFO):
        run_sweep(grid, progress=False)
        run_sweep(grid, progress=False)
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("sweep t:")]
    assert lines[0].startswith("sweep t: 2 cells to run, 0 restored") and "estimated wall time" in lines[0]
    assert (
        lines[1]
        == f"sweep t: 0 cells to run, 0 restored from {report_dir(grid) / COMPACT}, 2 already done; nothing to train"
    )


def _damage(grid, name: str = "result.json") -> str:
    h = grid.cells()[0].hash()
    (ResultStore(grid.output_dir).path(h) / name).write_text('{"status": "ok"}')
    return h


def test_a_damaged_cell_restored_from_the_compact_copy_says_so(tmp_path, caplog):
    grid = load_grid(_cfg(tmp_path))
    run_sweep(grid, progress=False)
    compact = report_dir(grid) / COMPACT
    write_compact(grid.output_dir, [c.hash() for c in grid.cells()], compact)
    h = _damage(grid)
    with caplog.at_level(logging.INFO):
        rep = run_sweep(grid, progress=False)
    assert rep.ran == 0 and ResultStore(grid.output_dir).is_done(h)
    (line,) = [m for m in _warnings(caplog) if h in m]
    assert "full" in line and "result.json fails its checksum" in line
    assert f"restored it from the compact copy {compact}" in line


def test_a_damaged_cell_without_a_compact_copy_is_rerun_with_one_line(tmp_path, caplog):
    grid = load_grid(_cfg(tmp_path))
    run_sweep(grid, progress=False)
    h = _damage(grid, "rounds.csv")
    with caplog.at_level(logging.INFO):
        rep = run_sweep(grid, progress=False)
    assert rep.ran == 1
    (line,) = [m for m in _warnings(caplog) if h in m]
    assert "rounds.csv fails its checksum" in line and "running it again" in line


HOLDER = (
    "import sys, time; from fl_core.lock import store_lock\n"
    "with store_lock(sys.argv[1]):\n    print('locked', flush=True); time.sleep(60)"
)

# the CLI in-process; afterwards, whether torch or the sweep module got imported
WRAPPER = """
import runpy, sys
sys.argv = ["layerbench", *sys.argv[1:]]
code = 0
try:
    runpy.run_module("fl_core.cli", run_name="__main__", alter_sys=True)
except SystemExit as e:
    code = e.code
print("LOADED:", sorted(m for m in ("torch", "fl_core.sweep") if m in sys.modules), file=sys.stderr)
sys.exit(code)
"""


@pytest.fixture
def held_store(tmp_path):
    """A grid whose store another process holds locked (as a running sweep does)."""
    cfg = _cfg(tmp_path)
    out = str(tmp_path / "results")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, out], env=env, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        yield cfg, holder.pid
    finally:
        holder.kill()
        holder.wait()


@pytest.mark.parametrize("command", ["sweep", "report"])
def test_a_held_store_is_refused_before_torch_loads(held_store, command, tmp_path):
    cfg, pid = held_store
    compact = tmp_path / "results" / "t" / COMPACT
    compact.parent.mkdir(parents=True)
    compact.write_bytes(b"published")  # a report must never rewrite it from a store a sweep holds
    args = [sys.executable, "-c", WRAPPER, command, str(cfg)] + (
        ["--no-wandb"] if command == "report" else []
    )
    proc = subprocess.run(args, cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 1, proc.stderr
    assert f"another sweep (PID {pid}) is writing" in proc.stderr and "Traceback" not in proc.stderr
    assert "LOADED: []" in proc.stderr, proc.stderr
    assert compact.read_bytes() == b"published"


def test_a_resumed_cell_says_at_which_round(tmp_path, caplog):
    cell = tiny_cell("top_k", k=1)
    cell = cell.model_copy(update={"fl": cell.fl.model_copy(update={"rounds": 3})})

    class Stop(Exception):
        pass

    def stop(row):
        if row["round"] == 1:
            raise Stop

    ckpt = Checkpoint(tmp_path / "c.pt", every=1)
    with pytest.raises(Stop):
        run_cell(cell, on_round=stop, progress=False, checkpoint=ckpt)
    with caplog.at_level(logging.INFO):
        run_cell(cell, progress=False, checkpoint=ckpt)
    assert any("resumed at round 1 of 3" in r.getMessage() for r in caplog.records)


def test_a_permission_error_is_named_as_such_with_its_path(tmp_path, monkeypatch):
    grid = load_grid(_cfg(tmp_path, checkpoint_every=0))
    bad = str(Path(grid.output_dir) / "runs" / "x")

    def write(self, *a, **kw):
        raise PermissionError(errno.EACCES, "Permission denied", bad)

    monkeypatch.setattr(ResultStore, "write", write)
    with pytest.raises(StorageFault) as exc:
        run_sweep(grid, progress=False)
    msg = str(exc.value)
    assert "Permission denied" in msg and bad in msg and "Fix permissions" in msg
    assert "no room" not in msg and "Free space" not in msg


def test_dry_run_of_a_ray_grid_needs_no_ray(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr("fl_core.ray_backend.ray_installed", lambda: False)
    assert main(["sweep", str(_cfg(tmp_path, backend="ray")), "--dry-run", "--no-progress"]) == 0
    assert "2 cells to run" in capsys.readouterr().out and not (tmp_path / "results").exists()
