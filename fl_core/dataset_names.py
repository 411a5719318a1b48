"""The registered dataset names and the local-dataset test, torch-free (validation reads them before
torch loads). :data:`DATASET_NAMES` must list :data:`fl_core.data.DATASETS` (``tests`` checks it)."""

from __future__ import annotations

from pathlib import Path

DATASET_NAMES = frozenset({"bbc_news", "rotten_tomatoes"})
# columns of a registered dataset that can define natural clients (``natural:<column>``)
SOURCE_COLUMNS: dict[str, frozenset[str]] = {
    "bbc_news": frozenset(),
    "rotten_tomatoes": frozenset({"movie_name"}),
}
#: rows of each registered dataset before the train/test split (a sweep's time estimate reads them)
DATASET_ROWS = {"bbc_news": 2225, "rotten_tomatoes": 12808}


def is_local_dataset(name: str) -> bool:
    """A ``save_to_disk`` directory: a DatasetDict (dataset_dict.json) or a Dataset (state.json)."""
    return bool(name) and any((Path(name) / f).is_file() for f in ("dataset_dict.json", "state.json"))


def local_columns(path: str) -> frozenset[str] | None:
    """The columns a local ``save_to_disk`` dataset lists in its ``dataset_info.json`` (its train split's
    for a DatasetDict), or None when none is listed; read as JSON, torch-free."""
    import json

    root = Path(path)
    for info in (root / "dataset_info.json", root / "train" / "dataset_info.json"):
        if info.is_file():
            feats = json.loads(info.read_text()).get("features") or {}
            return frozenset(feats) - {"text", "label"}
    return None
