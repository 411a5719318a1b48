"""Resume inside a cell: a run stopped after round r and restarted finishes bitwise identical."""

import os
import signal
import subprocess
import sys
import time

import pytest

from fl_core.errors import CellNotRunnable
from fl_core.methods import METHODS
from fl_core.simulator import Checkpoint, run_cell
from tests.conftest import tiny_cell


class Stop(Exception):
    pass


def _three_rounds(cell):
    return cell.model_copy(update={"fl": cell.fl.model_copy(update={"rounds": 3})})


# budget-aware methods: budgets that fit the 2-block random test model (their defaults do not)
FITTING = {
    "tiny": {"budget": 0.5, "candidates": ["tiny-bert"], "constrain": ["upload"]},
    "lora_budget": {"budget": 0.5, "constrain": ["upload"]},
}


@pytest.mark.parametrize("method", sorted(METHODS))
def test_resume_after_round_is_bitwise_identical(tmp_path, method):
    cell = _three_rounds(tiny_cell(method, **FITTING.get(method, {})))
    try:
        reference = run_cell(cell, progress=False)
    except CellNotRunnable as err:
        pytest.skip(f"{method} cannot run on the tiny cell: {err}")

    def stop_at_round_1(row):
        if row["round"] == 1:
            raise Stop

    ckpt = Checkpoint(tmp_path / "c.pt", every=1)
    with pytest.raises(Stop):
        run_cell(cell, on_round=stop_at_round_1, progress=False, checkpoint=ckpt)
    assert ckpt.load()["round"] == 0
    resumed = run_cell(cell, progress=False, checkpoint=ckpt)
    assert resumed.rounds == reference.rounds
    assert resumed.selections == reference.selections
    strip = [{k: v for k, v in r.items() if k != "wall_s"} for r in reference.costs]
    assert [{k: v for k, v in r.items() if k != "wall_s"} for r in resumed.costs] == strip


def test_checkpoint_of_another_config_is_ignored(tmp_path):
    ckpt = Checkpoint(tmp_path / "c.pt")
    ckpt.save({"config_hash": "something else", "round": 5})
    res = run_cell(tiny_cell("head"), progress=False, checkpoint=ckpt)
    assert [r["round"] for r in res.rounds] == [-1, 0, 1]  # from scratch: round 0 evaluated first


def test_sigkill_mid_cell_then_resume_matches(tmp_path):
    """A real SIGKILL after a checkpoint; the restarted process finishes with identical metrics."""
    import yaml

    from fl_core.store import ResultStore
    from fl_core.validate import parse_grid
    from tests.conftest import tiny_grid_dict

    d = tiny_grid_dict(tmp_path, methods=[{"name": "full"}])
    d["fl"]["rounds"] = 40
    d["threads_per_cell"] = 1  # the same threads as this test process: bitwise-comparable numbers
    cfg = tmp_path / "g.yaml"
    cfg.write_text(yaml.safe_dump(d))
    grid = parse_grid(d)
    cell = grid.cells()[0]
    ckpt_path = tmp_path / "results" / "checkpoints" / f"{cell.hash()}.pt"
    proc = subprocess.Popen(
        [sys.executable, "-m", "fl_core.cli", "sweep", str(cfg), "--no-progress"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.time() + 120
    while time.time() < deadline and not ckpt_path.exists():
        time.sleep(0.005)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    store = ResultStore(grid.output_dir)
    assert ckpt_path.exists() and not store.is_done(cell.hash()), "kill should land mid-cell"
    resumed_from = Checkpoint(ckpt_path).load()["round"]
    assert resumed_from < 39
    assert (
        subprocess.run(
            [sys.executable, "-m", "fl_core.cli", "sweep", str(cfg), "--no-progress"], capture_output=True
        ).returncode
        == 0
    )
    assert not ckpt_path.exists()  # cleared once the cell is stored
    stored = store.load_table(cell.hash(), "rounds")
    reference = run_cell(cell, progress=False)
    assert [round(x, 12) for x in stored[stored["round"] >= 0]["train_loss"]] == [
        round(r["train_loss"], 12) for r in reference.rounds if r["round"] >= 0
    ]
    assert stored["accuracy"].dropna().tolist() == [
        r["accuracy"] for r in reference.rounds if "accuracy" in r
    ]
