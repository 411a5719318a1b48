"""Model registry: packaged pretrained MiniLM (and its first-k-block variants), SmolLM2-135M, random
test models (``tiny-bert``, ``tiny-llama``), and any local BERT- or Llama-family dir."""

from __future__ import annotations

import functools
import os
import shutil
from pathlib import Path

import torch
from safetensors.torch import save_file
from transformers import (
    AutoModel,
    AutoModelForCausalLM,
    AutoModelForSequenceClassification,
    AutoTokenizer,
    BertConfig,
    BertForSequenceClassification,
    LlamaConfig,
    LlamaForCausalLM,
    LlamaModel,
)

from fl_core.data.splits import cache_dir
from fl_core.model_names import model_label  # noqa: F401  (re-exported)
from fl_core.model_specs import (  # noqa: F401  (re-exported)
    MODELS,
    TINY_BERT,
    TINY_LLAMA,
    ModelEntry,
    ModelNotInstalledError,
    model_family,
    model_pooling,
    num_blocks,
)
from fl_core.models.blocks import BlockModel
from fl_core.models.decoder import DecoderBlockModel, DecoderClassifier


@functools.lru_cache(maxsize=8)
def load_tokenizer(name: str):
    """The model's tokenizer (cached per process: a GGUF one takes seconds); a decoder pads with its
    end-of-sequence token, on the right (the token cache's layout)."""
    entry = MODELS.get(name)
    if entry and entry.gguf:  # read from the GGUF once (it dequantizes every tensor), then from the cache
        out = _gguf_cache(entry, "tokenizer")
        if not (out / "tokenizer_config.json").is_file():
            tok = AutoTokenizer.from_pretrained(entry.path(), gguf_file=entry.gguf, trust_remote_code=False)
            _publish(out, tok.save_pretrained)
        path = str(out)
    else:
        path = entry.path() if entry else name
    tok = AutoTokenizer.from_pretrained(path, trust_remote_code=False)
    if model_family(name) == "decoder":
        if tok.pad_token is None:
            tok.pad_token = tok.eos_token
        tok.padding_side = "right"
    return tok


def _quiet(fn, *args, **kwargs):
    """Call a HF loader without its "newly initialised weights" report (the fresh head is expected)."""
    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        return fn(*args, **kwargs)
    finally:
        hf_logging.set_verbosity(verbosity)


def _gguf_cache(entry: ModelEntry, what: str) -> Path:
    """Where a GGUF entry's converted ``what`` lives under the cache (``LAYERBENCH_CACHE``), keyed by
    the file's name, size and mtime."""
    st = (Path(entry.path()) / entry.gguf).stat()
    return cache_dir() / "models" / f"{Path(entry.gguf).stem}-{st.st_size}-{int(st.st_mtime)}-{what}"


def _publish(out: Path, write) -> None:
    """``write(dir)`` into a temporary dir, then move it to ``out`` (atomic; a concurrent writer wins)."""
    tmp = out.with_name(f"{out.name}.tmp{os.getpid()}")
    write(tmp)
    out.parent.mkdir(parents=True, exist_ok=True)
    if not out.exists():
        os.replace(tmp, out)
    else:
        shutil.rmtree(tmp, ignore_errors=True)


def _dequantized_dir(entry: ModelEntry) -> str:
    """A GGUF model dequantized once to fp32 safetensors under the cache: later cells load it in about
    a second instead of ~24 s."""
    out = _gguf_cache(entry, "fp32")
    if not (out / "model.safetensors").is_file():
        hf = _quiet(
            AutoModelForCausalLM.from_pretrained, entry.path(), gguf_file=entry.gguf, dtype=torch.float32
        )

        def write(tmp: Path) -> None:
            # save_pretrained refuses a GGUF-loaded model: the config without its quantization note,
            # and the fp32 tensors (the tied LM head is the embedding, stored once)
            cfg = {k: v for k, v in hf.config.to_dict().items() if k != "quantization_config"}
            type(hf.config).from_dict(cfg).save_pretrained(tmp)
            tied = hf.lm_head.weight is hf.model.embed_tokens.weight
            state = {
                k: v.contiguous() for k, v in hf.state_dict().items() if not (tied and k == "lm_head.weight")
            }
            save_file(state, tmp / "model.safetensors", metadata={"format": "pt"})

        _publish(out, write)
    return str(out)


def _decoder(name: str, num_labels: int, task: str) -> BlockModel:
    """A Llama-family decoder: random (``tiny-llama``), packaged GGUF (SmolLM2) or a local dir."""
    entry = MODELS.get(name)
    if entry is not None and entry.random:
        cfg = LlamaConfig(vocab_size=len(load_tokenizer(name)), **entry.config)
        cfg.pad_token_id = load_tokenizer(name).pad_token_id
        hf = LlamaForCausalLM(cfg) if task == "lm" else DecoderClassifier(LlamaModel(cfg), num_labels)
        return DecoderBlockModel(hf, name, is_random=True, task=task)
    # GGUF: dequantized to fp32 once; a local dir: safetensors only (no pickled .bin), no remote code
    path = _dequantized_dir(entry) if entry and entry.gguf else entry.path() if entry else name
    kwargs = {"use_safetensors": True, "trust_remote_code": False, "dtype": torch.float32}
    if entry and entry.num_blocks:
        kwargs["num_hidden_layers"] = entry.num_blocks
    if task == "lm":
        hf = _quiet(AutoModelForCausalLM.from_pretrained, path, **kwargs)
    else:
        hf = DecoderClassifier(_quiet(AutoModel.from_pretrained, path, **kwargs), num_labels)
    return DecoderBlockModel(hf, name, task=task)


def build_model(
    name: str, num_labels: int, seed: int = 0, pooling: str | None = None, task: str = "classify"
) -> BlockModel:
    """Fresh model for a cell; the new head is initialised from ``seed``. ``pooling``: the model's
    own (:func:`fl_core.model_specs.model_pooling`) unless given (tests build both kinds).
    ``task``: ``"classify"``, or ``"lm"`` (next-token prediction; decoders only)."""
    torch.manual_seed(seed)
    if model_family(name) == "decoder":
        return _decoder(name, num_labels, task)
    if task != "classify":
        raise NotImplementedError(f"task {task!r} needs a decoder; {name!r} is an encoder")
    pooling = pooling or model_pooling(name)
    entry = MODELS.get(name)
    if entry is not None and entry.random:
        cfg = BertConfig(
            vocab_size=load_tokenizer(name).vocab_size, num_labels=num_labels, **entry.random_config()
        )
        return BlockModel(BertForSequenceClassification(cfg), name, is_random=True, pooling=pooling)
    path = entry.path() if entry else name
    kwargs = {"num_hidden_layers": entry.num_blocks} if entry and entry.num_blocks else {}
    # a user-supplied dir runs no code: safetensors weights only (no pickled .bin), no remote code
    hf = _quiet(
        AutoModelForSequenceClassification.from_pretrained,
        path,
        num_labels=num_labels,
        use_safetensors=True,
        trust_remote_code=False,
        **kwargs,
    )
    if hf.config.model_type != "bert":
        raise NotImplementedError(
            f"model type {hf.config.model_type!r}: only BERT-family encoders and "
            "Llama-family decoders have a block view"
        )
    return BlockModel(hf, name, pooling=pooling)
