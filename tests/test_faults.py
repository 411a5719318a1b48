"""Storage faults injected for real: a tmpfs that fills mid-run, a read-only results dir (a read-only
mount: root ignores chmod), two sweeps on one store, a kill during resume, racing writers."""

from __future__ import annotations

import contextlib
import io
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

import fl_core.sweep as sweep_mod
from fl_core.cli import main
from fl_core.faults import StorageFault
from fl_core.lock import StoreBusy, store_lock
from fl_core.store import ResultStore, StoreError
from fl_core.sweep import run_sweep
from fl_core.validate import parse_grid
from tests.conftest import tiny_cell, tiny_grid_dict

REPO = Path(__file__).resolve().parents[1]


def _mount(path: Path, size: str) -> None:
    path.mkdir(parents=True, exist_ok=True)
    p = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True
    )
    if p.returncode:
        pytest.skip(f"cannot mount a tmpfs here (needs root / CAP_SYS_ADMIN): {p.stderr.decode().strip()}")


@pytest.fixture
def tmpfs(tmp_path):
    """A real 64 MiB tmpfs (a disk that can fill up, or be remounted read-only)."""
    mnt = tmp_path / "fs"
    _mount(mnt, "64m")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], check=False)


def _fill(mnt: Path, leave: int) -> Path:
    """Fill the filesystem at ``mnt`` until ENOSPC, then free ``leave`` bytes."""
    filler = mnt / "filler"
    with contextlib.suppress(OSError), open(filler, "wb", buffering=0) as f:
        for chunk in (2**20, 4096):  # MiB by MiB, then to the brim page by page
            with contextlib.suppress(OSError):
                while True:
                    f.write(b"\0" * chunk)
    os.truncate(filler, max(0, filler.stat().st_size - leave))
    return filler


def _temps(root: Path) -> list[Path]:
    return [*root.glob("runs/.tmp-*"), *root.glob("runs/.old-*"), *root.glob("checkpoints/*.tmp*")]


def _grid(root: Path, **over):
    d = tiny_grid_dict(root, **over)
    d["output_dir"] = str(root / "results")
    return parse_grid(d), d


def test_disk_filling_mid_cell_records_the_cell_and_stops_the_sweep(tmpfs, monkeypatch):
    grid, _ = _grid(
        tmpfs, methods=[{"name": "head"}, {"name": "full"}, {"name": "top_k", "params": {"k": 1}}]
    )
    cls = type(sweep_mod.checkpoint_for(grid, grid.cells()[0]))
    real, seen, filler = cls.save, [], []

    def save(self, state):
        seen.append(self.path.name)
        if len(set(seen)) == 2 and not filler:  # the second cell's first checkpoint: the disk fills up
            buf = io.BytesIO()
            torch.save(state, buf)  # room for half of it: the save fails midway, for real
            filler.append(_fill(tmpfs, leave=buf.tell() // 2))
        return real(self, state)

    monkeypatch.setattr(cls, "save", save)
    with pytest.raises(StorageFault) as exc:
        run_sweep(grid, progress=False)
    msg = str(exc.value)
    assert "\n" not in msg and "No space left on device" in msg and "recorded it as failed" in msg
    store, cells = ResultStore(grid.output_dir), grid.cells()
    assert store.is_done(cells[0].hash())
    failed = store.load_result(cells[1].hash())
    assert failed["status"] == "failed" and "No space left" in failed["reason"]
    assert not _temps(Path(grid.output_dir)), "a partial write survived"
    filler[0].unlink()  # room again: the same sweep resumes and runs only what is left
    monkeypatch.setattr(cls, "save", real)
    rep = run_sweep(grid, progress=False)
    assert (rep.skipped_done, rep.ran, rep.statuses) == (1, 2, {"ok": 2})
    assert all(store.is_done(c.hash()) for c in cells) and not _temps(Path(grid.output_dir))


def test_full_disk_while_writing_the_result_is_one_line(tmpfs, monkeypatch):
    grid, _ = _grid(tmpfs, checkpoint_every=0)
    real_write, calls = ResultStore.write, []

    def write(self, *a, **kw):
        calls.append(1)
        if len(calls) == 1:
            _fill(tmpfs, leave=0)
        return real_write(self, *a, **kw)

    monkeypatch.setattr(ResultStore, "write", write)
    with pytest.raises(StorageFault, match="could not record it"):
        run_sweep(grid, progress=False)
    assert not _temps(Path(grid.output_dir))


def test_read_only_results_dir_is_one_clear_line(tmpfs, capsys):
    grid, d = _grid(tmpfs)
    cfg = tmpfs.parent / "g.yaml"
    cfg.write_text(yaml.safe_dump(d))
    Path(d["output_dir"]).mkdir()
    # a read-only mount: chmod would not bind, the tests run as root
    subprocess.run(["mount", "-o", "remount,ro", str(tmpfs)], check=True)
    assert main(["sweep", str(cfg), "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.count("\n") == 1, err
    assert err.startswith("error:") and "not writable" in err and "Read-only file system" in err
    with pytest.raises(StoreError, match="Read-only file system"):  # --debug: the traceback
        main(["--debug", "sweep", str(cfg), "--no-progress"])


def test_results_dir_going_read_only_mid_sweep_stops_it_cleanly(tmpfs, monkeypatch):
    grid, _ = _grid(tmpfs, seeds=[0, 1])
    real_write, calls = ResultStore.write, []

    def write(self, *a, **kw):
        calls.append(1)
        if len(calls) == 2:  # a read-only bind mount over the store (open files keep a plain remount busy)
            subprocess.run(["mount", "--bind", str(tmpfs), str(tmpfs)], check=True)
            subprocess.run(["mount", "-o", "remount,bind,ro", str(tmpfs)], check=True)
        return real_write(self, *a, **kw)

    monkeypatch.setattr(ResultStore, "write", write)
    with pytest.raises(StorageFault, match="Read-only file system"):
        run_sweep(grid, progress=False)
    subprocess.run(["umount", str(tmpfs)], check=True)  # the bind mount: writable again
    monkeypatch.setattr(ResultStore, "write", real_write)
    rep = run_sweep(grid, progress=False)
    assert rep.skipped_done == 1 and rep.ran == 3 and not _temps(Path(grid.output_dir))


def test_second_sweep_on_a_locked_store_names_the_holder(tmp_path):
    grid, d = _grid(tmp_path)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from fl_core.lock import store_lock\n"
            "with store_lock(sys.argv[1]):\n    print('locked', flush=True); time.sleep(60)",
            d["output_dir"],
        ],
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(StoreBusy, match=f"PID {holder.pid}"):
            run_sweep(grid, progress=False)
        assert not list(ResultStore(grid.output_dir).runs.glob("[!.]*")), "the second sweep computed cells"
    finally:
        holder.kill()
        holder.wait()
    with store_lock(d["output_dir"]):  # the OS lock went with its process: never stale
        pass


def test_clean_temp_spares_a_live_writer(tmp_path):
    store = ResultStore(tmp_path)
    store.runs.mkdir(parents=True)
    (tmp_path / "checkpoints").mkdir()
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    h = tiny_cell().hash()
    try:
        keep = [store.runs / f".tmp-{h}-{live.pid}-abc", tmp_path / "checkpoints" / f"{h}.tmp{live.pid}"]
        gone = [store.runs / f".tmp-{h}-{dead.pid}-abc", tmp_path / "checkpoints" / f"{h}.tmp{dead.pid}"]
        for p in keep[:1] + gone[:1]:
            p.mkdir()
        for p in keep[1:] + gone[1:]:
            p.write_bytes(b"partial")
        store.clean_temp()
        assert all(p.exists() for p in keep) and not any(p.exists() for p in gone)
    finally:
        live.kill()
        live.wait()


WRITER = """
import sys
sys.path.insert(0, sys.argv[2])
from fl_core.config import RunConfig
from fl_core.store import ResultStore
store, cell = ResultStore(sys.argv[1]), RunConfig.model_validate_json(sys.argv[3])
for i in range(40):
    store.write(cell, {"status": "ok", "i": i}, {"rounds": [{"round": 0, "accuracy": 0.5}]}, {})
"""


def test_concurrent_finishers_of_one_cell_both_succeed(tmp_path):
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(tmp_path), str(REPO), tiny_cell().model_dump_json()],
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    errs = [p.communicate()[1] for p in procs]
    assert all(p.returncode == 0 for p in procs), errs
    store = ResultStore(tmp_path)
    assert store.is_done(tiny_cell().hash()) and not _temps(tmp_path)


def _wait_for(pred, timeout: float = 180) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline and not pred():
        time.sleep(0.02)


@pytest.mark.slow
def test_two_concurrent_sweeps_compute_each_cell_once(tmp_path):
    grid, d = _grid(tmp_path, seeds=[0, 1])
    cfg = tmp_path / "g.yaml"
    cfg.write_text(yaml.safe_dump(d))
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    args = [sys.executable, "-m", "fl_core.cli", "sweep", str(cfg), "--no-progress"]
    first = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    owner = Path(d["output_dir"]) / ".sweep.owner"
    _wait_for(owner.is_file)
    os.kill(first.pid, signal.SIGSTOP)  # holds the lock while the second starts: on a loaded host the
    try:  # first could otherwise finish its 4 tiny cells before the second even tries
        assert owner.is_file()
        busy = subprocess.run(args, env=env, capture_output=True, text=True)
    finally:
        os.kill(first.pid, signal.SIGCONT)
    assert busy.returncode == 1 and f"PID {first.pid}" in busy.stderr and "Traceback" not in busy.stderr
    waiter = subprocess.run([*args, "--wait", "-1"], env=env, capture_output=True, text=True)
    out, _ = first.communicate()
    assert first.returncode == 0 and "4 cells run" in out
    assert waiter.returncode == 0 and "0 cells run, 4 already done" in waiter.stdout, waiter.stderr


@pytest.mark.slow
def test_kill_during_resume_loses_and_duplicates_nothing(tmp_path):
    _, d = _grid(tmp_path, methods=[{"name": "full"}, {"name": "head"}], seeds=[0, 1, 2])
    d["fl"]["rounds"] = 3
    grid = parse_grid(d)
    cfg = tmp_path / "g.yaml"
    cfg.write_text(yaml.safe_dump(d))
    runs = Path(d["output_dir"]) / "runs"
    env = {**os.environ, "PYTHONPATH": str(REPO)}

    def done() -> int:
        return len(list(runs.glob("[!.]*/MANIFEST.json")))

    for target in (1, 3):  # kill after the first cell, then again while the resumed sweep runs
        proc = subprocess.Popen(
            [sys.executable, "-m", "fl_core.cli", "sweep", str(cfg), "--no-progress"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        _wait_for(lambda t=target: done() >= t)
        time.sleep(0.3)  # inside the next cell, past a checkpoint or two
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    before = done()
    assert 3 <= before < 6
    rep = run_sweep(grid, progress=False)
    assert rep.skipped_done == before and rep.ran == 6 - before and rep.statuses == {"ok": 6 - before}
    assert all(ResultStore(grid.output_dir).is_done(c.hash()) for c in grid.cells())
    assert not _temps(Path(d["output_dir"])) and done() == 6
