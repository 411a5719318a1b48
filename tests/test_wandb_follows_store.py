"""W&B runs follow the store (issue 14 item 6) and secrets stay with the driver (issue 17): one
offline run per cell however often it is interrupted, resumed or re-run, holding every round; the
resumed cell's wall_s covers every attempt; a planted API key reaches neither workers nor files."""

from __future__ import annotations

import json
import shutil

import pytest

from fl_core.checkpoint import Checkpoint
from fl_core.ray_backend import FORWARD, SECRET, worker_env
from fl_core.store import ResultStore
from fl_core.sweep import checkpoint_for, run_sweep
from fl_core.tracking import Tracker, run_id
from fl_core.validate import parse_grid
from tests.conftest import offline_runs, tiny_grid_dict, wandb_history

FAKE_KEY = "f4e3" * 10  # a well-formed, fake 40-hex-digit W&B key


def _grid(tmp_path):
    return parse_grid(tiny_grid_dict(tmp_path, wandb={"mode": "offline"}))  # 2 cells, 2 rounds


def _runs_by_cell(grid) -> dict[str, list]:
    runs = offline_runs(grid.output_dir)
    return {c.hash(): [r for r in runs if r.name.endswith(run_id(grid.name, c))] for c in grid.cells()}


def _grep(root, needle: str) -> list[str]:
    hits = []
    for p in root.rglob("*"):
        if p.is_file() and not p.is_symlink() and needle.encode() in p.read_bytes():
            hits.append(str(p))
    return hits


def test_interrupted_resumed_and_rerun_cells_keep_one_full_run_each(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_API_KEY", FAKE_KEY)
    grid = _grid(tmp_path)
    first = grid.cells()[0]
    log, dangling = Tracker.log, []

    def ctrl_c_after_round_1(self, row):  # the on_round of the first cell: Ctrl-C after round 1
        log(self, row)
        if row["round"] == 1 and self.run is not None and self.run.id == run_id(grid.name, first):
            dangling.append(self.run)
            raise KeyboardInterrupt

    monkeypatch.setattr(Tracker, "log", ctrl_c_after_round_1)
    with pytest.raises(KeyboardInterrupt):
        run_sweep(grid, progress=False)
    for run in dangling:  # what the dying process would have closed
        run.finish()
    monkeypatch.setattr(Tracker, "log", log)
    saved = Checkpoint(checkpoint_for(grid, first).path).load()
    assert saved["round"] == 0 and saved["elapsed_s"] > 0
    assert [len(v) for v in _runs_by_cell(grid).values()] == [1, 0]  # the killed attempt's run

    rep = run_sweep(grid, progress=False)
    assert rep.statuses == {"ok": 2}
    store = ResultStore(grid.output_dir)
    wall = store.load_result(first.hash())["info"]["wall_s"]
    assert wall > saved["elapsed_s"]  # the attempt before the interrupt counts too

    def check_one_full_run_per_cell():
        by_cell = _runs_by_cell(grid)
        assert len(offline_runs(grid.output_dir)) == len(grid.cells())
        for c in grid.cells():
            (run,) = by_cell[c.hash()]
            steps = [r["_step"] for r in wandb_history(run)]
            assert steps == list(range(grid.fl.rounds)), c.method.display
            table = store.load_table(c.hash(), "rounds")
            stored = table[table["round"] >= 0]["train_loss"].tolist()  # round -1: no W&B step
            logged = [r["train_loss"] for r in wandb_history(run)]
            assert logged == pytest.approx(stored, rel=1e-12)

    check_one_full_run_per_cell()
    shutil.rmtree(store.path(first.hash()))  # a lost cell is re-run: its run is replaced
    assert run_sweep(grid, progress=False).ran == 1
    check_one_full_run_per_cell()
    assert _grep(tmp_path, FAKE_KEY) == []  # the key reached neither the store nor the W&B files
    assert json.loads((store.path(first.hash()) / "result.json").read_text())["status"] == "ok"


def test_workers_get_only_what_they_need_and_never_a_secret():
    env = {
        "WANDB_API_KEY": FAKE_KEY,
        "WANDB_MODE": "online",
        "HF_TOKEN": "hf_fake",
        "HUGGING_FACE_HUB_TOKEN": "hf_fake",
        "AWS_SECRET_ACCESS_KEY": "x",
        "GITHUB_TOKEN": "x",
        "LAYERBENCH_API_KEY": "x",
        "HF_HUB_OFFLINE": "1",
        "HF_HOME": "/cache/hf",
        "LAYERBENCH_CACHE": "/cache/lb",
        "TOKENIZERS_PARALLELISM": "false",
        "OMP_NUM_THREADS": "2",
        "PATH": "/usr/bin",
        "SSH_AUTH_SOCK": "/tmp/agent",
        "DB_PASSWORD": "x",
    }
    out = worker_env(env)
    assert out == {
        "HF_HUB_OFFLINE": "1",
        "HF_HOME": "/cache/hf",
        "LAYERBENCH_CACHE": "/cache/lb",
        "TOKENIZERS_PARALLELISM": "false",
        "OMP_NUM_THREADS": "2",
    }
    assert not any(SECRET.search(k) for k in FORWARD)  # a future addition cannot be a credential
