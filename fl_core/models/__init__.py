"""Models: a registry of packaged pretrained encoders, seen as embeddings + blocks + head."""

from fl_core.models.blocks import EMB, HEAD, ArchInfo, BlockModel
from fl_core.models.registry import MODELS, build_model, load_tokenizer, model_label, num_blocks

__all__ = [
    "EMB",
    "HEAD",
    "MODELS",
    "ArchInfo",
    "BlockModel",
    "build_model",
    "load_tokenizer",
    "model_label",
    "num_blocks",
]
