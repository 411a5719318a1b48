"""Nothing read from a results directory runs code: a planted pickle checkpoint is refused, the cell
restarts cleanly, and partial files of a dead writer are cleaned up."""

from __future__ import annotations

import logging
import pickle
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from fl_core.checkpoint import Checkpoint
from fl_core.simulator import run_cell
from fl_core.store import ResultStore
from fl_core.sweep import checkpoint_for, run_sweep
from fl_core.validate import parse_grid
from tests.conftest import tiny_cell, tiny_grid_dict


class Evil:
    """Unpickling this creates ``marker`` (a stand-in for any command)."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _plant(path, marker, cell_hash, how):
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {"config_hash": cell_hash, "round": 0, "values": {}, "evil": Evil(marker)}
    if how == "torch":  # the old checkpoint format: torch.save'd pickle
        torch.save(state, path)
    else:
        path.write_bytes(pickle.dumps(state))


@pytest.mark.parametrize("how", ["torch", "pickle"])
def test_planted_pickle_checkpoint_never_runs_and_the_cell_restarts(tmp_path, how, caplog):
    grid = parse_grid(tiny_grid_dict(tmp_path, methods=[{"name": "full"}]))
    (cell,) = grid.cells()
    marker = tmp_path / "pwned"
    path = checkpoint_for(grid, cell).path
    assert path.name == f"{cell.hash()}.pt"  # the name the old format used, and the one used now
    _plant(path, marker, cell.hash(), how)
    # positive control: the old loader (torch.load(weights_only=False)) or plain pickle runs it
    old = torch.load(path, weights_only=False) if how == "torch" else pickle.loads(path.read_bytes())
    old["evil"].close()
    assert marker.exists(), "the planted file is not malicious: the test proves nothing"
    marker.unlink()

    with caplog.at_level(logging.WARNING, logger="fl_core.checkpoint"):
        rep = run_sweep(grid, progress=False)
    assert not marker.exists()
    assert rep.statuses == {"ok": 1}
    warned = [r for r in caplog.records if "ignoring checkpoint" in r.getMessage()]
    assert len(warned) == 1 and str(path) in warned[0].getMessage()
    stored = ResultStore(grid.output_dir).load_table(cell.hash(), "rounds")
    assert stored["round"].tolist() == list(range(-1, grid.fl.rounds))  # from scratch: every round
    reference = run_cell(cell, progress=False)
    trained = stored[stored["round"] >= 0]  # the evaluation before round 0 has no train loss
    assert trained["train_loss"].round(12).tolist() == [
        round(r["train_loss"], 12) for r in reference.rounds if r["round"] >= 0
    ]


def test_torn_checkpoint_restarts_the_cell(tmp_path, caplog):
    cell = tiny_cell("head")
    ckpt = Checkpoint(tmp_path / "c.pt")
    ckpt.save({"config_hash": cell.hash(), "round": 0, "w": torch.ones(1000)})
    data = ckpt.path.read_bytes()
    ckpt.path.write_bytes(data[: len(data) // 2])
    with caplog.at_level(logging.WARNING, logger="fl_core.checkpoint"):
        assert ckpt.load() is None
        res = run_cell(cell, progress=False, checkpoint=ckpt)
    assert len(res.rounds) == cell.fl.rounds + 1  # + the evaluation before round 0
    assert sum("ignoring checkpoint" in r.getMessage() for r in caplog.records) == 2  # one per load


# a foreign class named directly, and reached through an fl_core module (its `torch` attribute, its
# import of pydantic's BaseModel): the module string says fl_core, the class is not fl_core's
@pytest.mark.parametrize(
    "foreign",
    ["pathlib:Path", "fl_core.checkpoint:torch._export.ExportDynamoConfig", "fl_core.checkpoint:BaseModel"],
)
def test_a_safetensors_file_naming_a_foreign_class_is_refused(tmp_path, foreign, caplog):
    from safetensors.torch import save_file

    from fl_core.checkpoint import FORMAT

    marker = tmp_path / "pwned"
    text = (
        f'{{"config_hash": "x", "round": 0, "v": {{"__t__": "obj", "type": "{foreign}", "v": {{}}}},'
        f' "w": {{"__t__": "obj", "type": "builtins:open", "v": {{"file": "{marker}"}}}}}}'
    )
    state = torch.frombuffer(bytearray(text.encode()), dtype=torch.uint8)
    save_file({"__state__": state}, tmp_path / "c.pt", metadata={"format": FORMAT})
    assert Checkpoint(tmp_path / "c.pt").load() is None
    assert not marker.exists()
    assert foreign in caplog.text  # the warning names the refused class


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_partial_files_of_a_dead_writer_are_removed_on_the_next_start(tmp_path):
    ckpt = Checkpoint(tmp_path / "abc.pt")
    dead = tmp_path / f"abc.tmp{_dead_pid()}"
    live = tmp_path / f"abc.tmp{1}"  # pid 1 is always alive: a live writer's file stays
    other = tmp_path / f"other.tmp{_dead_pid()}"  # another cell's: cleaned when that cell starts
    for p in (dead, live, other):
        p.write_bytes(b"partial")
    assert ckpt.load() is None
    assert not dead.exists() and live.exists() and other.exists()


def test_a_failed_save_leaves_no_temp_file(tmp_path, monkeypatch):
    import fl_core.checkpoint as ck

    def full_disk(tensors, path, metadata=None):
        Path(path).write_bytes(b"half")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(ck, "save_file", full_disk)
    ckpt = Checkpoint(tmp_path / "c.pt")
    with pytest.raises(OSError):
        ckpt.save({"round": 0})
    assert list(tmp_path.iterdir()) == []


def test_a_model_dir_with_pickled_weights_is_refused_unread(tmp_path):
    from transformers import BertConfig

    from fl_core.models import build_model
    from fl_core.models.registry import TINY_BERT

    model_dir, marker = tmp_path / "model", tmp_path / "pwned"
    BertConfig(vocab_size=100, **TINY_BERT).save_pretrained(model_dir)
    torch.save({"bert.embeddings.word_embeddings.weight": Evil(marker)}, model_dir / "pytorch_model.bin")
    with pytest.raises(OSError, match="safetensors"):
        build_model(str(model_dir), num_labels=2)
    assert not marker.exists()
