"""The registered dataset names and the local-dataset test, torch-free (validation reads them before
torch loads). :data:`DATASET_NAMES` must list :data:`fl_core.data.DATASETS` (``tests`` checks it)."""

from __future__ import annotations

from pathlib import Path

DATASET_NAMES = frozenset({"bbc_news", "rotten_tomatoes", "bbc_news_lm"})

#: datasets whose task is next-token language modeling (their labels only steer the partition)
LM_DATASETS = frozenset({"bbc_news_lm"})


def dataset_task(name: str) -> str:
    """``"lm"`` (federated next-token fine-tuning; a decoder's LM head) or ``"classify"``."""
    return "lm" if name in LM_DATASETS else "classify"


def is_local_dataset(name: str) -> bool:
    """A ``save_to_disk`` directory: a DatasetDict (dataset_dict.json) or a Dataset (state.json)."""
    return bool(name) and any((Path(name) / f).is_file() for f in ("dataset_dict.json", "state.json"))
