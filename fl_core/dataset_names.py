"""The registered dataset names and the local-dataset test, torch-free (validation reads them before
torch loads). :data:`DATASET_NAMES` must list :data:`fl_core.data.DATASETS` (``tests`` checks it)."""

from __future__ import annotations

from pathlib import Path

DATASET_NAMES = frozenset({"bbc_news", "rotten_tomatoes"})
#: rows of each registered dataset before the train/test split (a sweep's time estimate reads them)
DATASET_ROWS = {"bbc_news": 2225, "rotten_tomatoes": 12808}


def is_local_dataset(name: str) -> bool:
    """A ``save_to_disk`` directory: a DatasetDict (dataset_dict.json) or a Dataset (state.json)."""
    return bool(name) and any((Path(name) / f).is_file() for f in ("dataset_dict.json", "state.json"))
