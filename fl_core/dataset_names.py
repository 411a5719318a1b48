"""The registered dataset names and the local-dataset test, torch-free (validation reads them before
torch loads). :data:`DATASET_NAMES` must list :data:`fl_core.data.DATASETS` (``tests`` checks it); it
holds the built-ins and the plugins (entry points ``layerbench.datasets``, :class:`DatasetPlugin`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fl_core.registry import Registry

BUILT_IN_DATASETS = frozenset({"bbc_news", "rotten_tomatoes", "bbc_news_lm"})
# columns of a registered dataset that can define natural clients (``natural:<column>``)
SOURCE_COLUMNS: dict[str, frozenset[str]] = {
    "bbc_news": frozenset(),
    "rotten_tomatoes": frozenset({"movie_name"}),
    "bbc_news_lm": frozenset(),
}
#: rows of each registered dataset before the train/test split (a sweep's time estimate reads them)
DATASET_ROWS = {"bbc_news": 2225, "rotten_tomatoes": 12808, "bbc_news_lm": 2225}


@dataclass(frozen=True)
class DatasetPlugin:
    """A dataset from another package (entry point ``layerbench.datasets``): ``load()`` returns a
    ``datasets.Dataset`` (or a ``DatasetDict`` with ``train``/``test``) with columns ``text`` (str) and
    ``label`` (``ClassLabel``), plus any ``source_columns`` (strings) that define natural clients
    (``natural:<column>``). Its module is imported by validation and ``list``: keep it light (import
    ``datasets`` inside ``load``)."""

    load: Callable[[], Any]
    source_columns: frozenset[str] = frozenset()
    rows: int | None = None  # rows before the split, for the sweep's time estimate


def _facts(name: str, plugin: DatasetPlugin | None) -> None:
    if plugin is not None:  # a plugin's source columns and rows, beside the built-ins'
        SOURCE_COLUMNS[name] = frozenset(plugin.source_columns)
        if plugin.rows is not None:
            DATASET_ROWS[name] = plugin.rows


#: every dataset by name with its origin: the built-ins (None: :mod:`fl_core.data.sources` loads them),
#: then the plugins
DATASETS_FOUND: Registry[DatasetPlugin | None] = Registry(
    "dataset", dict.fromkeys(sorted(BUILT_IN_DATASETS)), on_add=_facts
)
DATASETS_FOUND.load_plugins("layerbench.datasets", DatasetPlugin)
#: the registered dataset names (a live view: plugins included)
DATASET_NAMES = DATASETS_FOUND.keys()

#: datasets whose task is next-token language modeling (their labels only steer the partition)
LM_DATASETS = frozenset({"bbc_news_lm"})


def dataset_task(name: str) -> str:
    """``"lm"`` (federated next-token fine-tuning; a decoder's LM head) or ``"classify"``."""
    return "lm" if name in LM_DATASETS else "classify"


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
