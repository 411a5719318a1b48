"""Shared fixtures. Tests never reach a hub: an accidental hub call fails at once."""

from __future__ import annotations

import os

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
