"""Model registry: packaged pretrained MiniLM (and its first-k-block variants), a random test model."""

from __future__ import annotations

import torch
from transformers import (
    AutoModelForSequenceClassification,
    AutoTokenizer,
    BertConfig,
    BertForSequenceClassification,
)

from fl_core.model_names import model_label  # noqa: F401  (re-exported)
from fl_core.model_specs import (  # noqa: F401  (re-exported)
    MODELS,
    TINY_BERT,
    ModelEntry,
    ModelNotInstalledError,
    model_pooling,
    num_blocks,
)
from fl_core.models.blocks import BlockModel


def load_tokenizer(name: str):
    entry = MODELS.get(name)
    return AutoTokenizer.from_pretrained(entry.path() if entry else name, trust_remote_code=False)


def build_model(name: str, num_labels: int, seed: int = 0, pooling: str | None = None) -> BlockModel:
    """Fresh model for a cell; the new head is initialised from ``seed``. ``pooling``: the model's
    own (:func:`fl_core.model_specs.model_pooling`) unless given (tests build both kinds)."""
    torch.manual_seed(seed)
    pooling = pooling or model_pooling(name)
    entry = MODELS.get(name)
    if entry is not None and entry.random:
        kw = entry.random_config()
        cfg = BertConfig(vocab_size=load_tokenizer(name).vocab_size, num_labels=num_labels, **kw)
        return BlockModel(BertForSequenceClassification(cfg), name, is_random=True, pooling=pooling)
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
    return BlockModel(hf, name, pooling=pooling)
