"""Shared fixtures. Tests never reach a hub: an accidental hub call fails at once."""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest  # noqa: E402

from fl_core.config import DataConfig, FLConfig, MethodSpec, RunConfig  # noqa: E402

TINY_FL = FLConfig(
    num_clients=4, clients_per_round=2, rounds=2, local_steps=2, batch_size=8, max_len=16, eval_batch_size=32
)
TINY_DATA = DataConfig(max_train_samples=200, max_test_samples=50)


def tiny_cell(method: str = "full", seed: int = 0, alpha: float | str = 1.0, **params) -> RunConfig:
    """A cell on the random 2-block test model (RANDOM WEIGHTS) over a slice of real BBC News."""
    return RunConfig(
        dataset="bbc_news",
        alpha=alpha,
        method=MethodSpec(name=method, params=params),
        seed=seed,
        model="tiny-bert",
        fl=TINY_FL,
        data=TINY_DATA,
    )


def tiny_grid_dict(tmp_path, **over) -> dict:
    d = {
        "name": "t",
        "model": "tiny-bert",
        "datasets": ["bbc_news"],
        "alphas": [1.0],
        "seeds": [0],
        "methods": [{"name": "full"}, {"name": "head"}],
        "fl": TINY_FL.model_dump(),
        "data": TINY_DATA.model_dump(),
        "wandb": {"mode": "off"},
        "output_dir": str(tmp_path / "results"),
    }
    d.update(over)
    return d


@pytest.fixture(autouse=True, scope="session")
def _session_env(tmp_path_factory):
    """One tokenization cache for the whole session (never the user's), and one torch thread: the
    test models are far below torch's threading break-even, and 2 threads thrash on a busy CPU."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LAYERBENCH_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))
        yield
    torch.set_num_threads(threads)


# -- offline W&B runs read back (wandb 0.31 ships no Python reader for its ``.wandb`` files) --------
# A ``.wandb`` file is a LevelDB-style log: a 7-byte header (``:W&B``, magic, version), then 32 KiB
# blocks of records ``<crc u32><length u16><type u8><data>``; a record split across blocks is typed
# first/middle/last. Each record is a ``wandb_internal_pb2.Record``.

_WB_BLOCK, _WB_HEAD = 32768, 7
_FULL, _FIRST, _MIDDLE, _LAST = 1, 2, 3, 4


def wandb_records(path: str | Path) -> list:
    from wandb.proto import wandb_internal_pb2 as pb

    data = Path(path).read_bytes()
    assert data[:4] == b":W&B", f"{path} is not a W&B log"
    pos, buf, out = _WB_HEAD, b"", []
    while pos + _WB_HEAD <= len(data):
        left = _WB_BLOCK - pos % _WB_BLOCK
        if left < _WB_HEAD:  # block trailer padding
            pos += left
            continue
        _, length, kind = struct.unpack("<IHB", data[pos : pos + _WB_HEAD])
        if kind == 0:  # zero padding
            pos += left
            continue
        chunk, pos = data[pos + _WB_HEAD : pos + _WB_HEAD + length], pos + _WB_HEAD + length
        if kind == _FULL:
            out.append(chunk)
        elif kind == _FIRST:
            buf = chunk
        elif kind == _MIDDLE:
            buf += chunk
        elif kind == _LAST:
            out.append(buf + chunk)
    return [pb.Record.FromString(c) for c in out]


def offline_runs(wandb_root: str | Path) -> list[Path]:
    """Every offline run folder under ``<output_dir>/wandb``."""
    return sorted(p for p in Path(wandb_root).rglob("offline-run-*") if p.is_dir())


def wandb_history(run_dir: str | Path) -> list[dict]:
    """The logged history rows of one offline run, in order (``_step`` included)."""
    (log,) = Path(run_dir).glob("run-*.wandb")
    rows = []
    for r in wandb_records(log):
        if r.WhichOneof("record_type") == "history":
            rows.append({i.key or "/".join(i.nested_key): json.loads(i.value_json) for i in r.history.item})
    return rows
