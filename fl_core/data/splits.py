"""Seeded, stratified train/test split and tokenization cached on disk."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import datasets as hfd
import numpy as np

from fl_core.data.sources import load_source


def cache_dir() -> Path:
    return Path(os.environ.get("LAYERBENCH_CACHE", Path.home() / ".cache" / "layerbench"))


@dataclass(frozen=True)
class TokenizedData:
    """Token ids padded to ``max_len`` (padding is cut per batch), labels and true lengths."""

    ids: np.ndarray  # [N, max_len] int32
    lengths: np.ndarray  # [N] int32
    labels: np.ndarray  # [N] int64
    groups: np.ndarray | None = None  # [N] int64: the source of each row (natural partitions), if asked

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, idx: np.ndarray) -> TokenizedData:
        groups = None if self.groups is None else self.groups[idx]
        return TokenizedData(self.ids[idx], self.lengths[idx], self.labels[idx], groups)


@dataclass(frozen=True)
class Splits:
    train: TokenizedData
    test: TokenizedData
    label_names: list[str]
    split_hash: str  # content hash of the split (which rows went where)
    val: TokenizedData | None = None  # rows carved from train for model selection (data.val_fraction)

    @property
    def num_labels(self) -> int:
        return len(self.label_names)


def split_dataset(name: str, test_fraction: float, split_seed: int) -> hfd.DatasetDict:
    raw = load_source(name)
    if isinstance(raw, hfd.DatasetDict) and "train" in raw and "test" in raw:
        return hfd.DatasetDict(train=raw["train"], test=raw["test"])
    ds = raw["train"] if isinstance(raw, hfd.DatasetDict) else raw
    return ds.train_test_split(test_size=test_fraction, seed=split_seed, stratify_by_column="label")


def _tokenizer_key(tokenizer) -> str:
    vocab = tokenizer.get_vocab()
    h = hashlib.sha256(repr(sorted(vocab.items())[:2000]).encode() + str(len(vocab)).encode())
    return f"{type(tokenizer).__name__}-{h.hexdigest()[:10]}"


def _encode(ds: hfd.Dataset, tokenizer, max_len: int) -> TokenizedData:
    enc = tokenizer(
        list(ds["text"]), truncation=True, max_length=max_len, padding="max_length", return_length=False
    )
    ids = np.asarray(enc["input_ids"], dtype=np.int32)
    mask = np.asarray(enc["attention_mask"], dtype=np.int8)
    return TokenizedData(ids, mask.sum(1).astype(np.int32), np.asarray(ds["label"], dtype=np.int64))


def _group_codes(dd: hfd.DatasetDict, column: str) -> tuple[np.ndarray, np.ndarray]:
    """Integer codes of ``column`` for train and test, shared (sorted values of both splits)."""
    if column not in dd["train"].column_names:
        raise ValueError(
            f"natural:{column}: the dataset has no column {column!r}; it has {dd['train'].column_names}"
        )
    values = [list(map(str, dd[s][column])) for s in ("train", "test")]
    names = sorted(set(values[0]) | set(values[1]))
    code = {v: i for i, v in enumerate(names)}
    return tuple(np.asarray([code[v] for v in vs], dtype=np.int64) for vs in values)


@functools.lru_cache(maxsize=32)
def source_fingerprint(name: str, test_fraction: float, split_seed: int, group_by: str | None) -> str:
    """12 hex digits of the split rows' content (texts, labels, label names, the group column), once
    per process: a run reads its source once, a sweep's cells share it."""
    dd = split_dataset(name, test_fraction, split_seed)
    h = hashlib.sha256(repr(dd["train"].features["label"].names).encode())
    for part in (dd["train"], dd["test"]):
        h.update("\x00".join(part["text"]).encode())
        h.update(np.asarray(part["label"], dtype=np.int64).tobytes())
        if group_by and group_by in part.column_names:
            h.update("\x00".join(map(str, part[group_by])).encode())
    return h.hexdigest()[:12]


def load_splits(
    name: str,
    tokenizer,
    max_len: int,
    test_fraction: float = 0.2,
    split_seed: int = 0,
    group_by: str | None = None,
) -> Splits:
    """Tokenize once and cache on disk, keyed by (dataset name, tokenizer, max_len, a fingerprint of
    the split rows' content[, group column]). The source is loaded and split every time (about a
    second) so that a dataset whose rows changed (a plugin's new version, an edited local file) is
    tokenized again rather than read from a stale cache. ``group_by``: a column whose values become
    each row's ``groups`` code (a natural partition); the split does not depend on it."""
    fp = source_fingerprint(name, test_fraction, split_seed, group_by)
    safe = name.replace("/", "_").strip("._")
    key = f"{safe}-{_tokenizer_key(tokenizer)}-L{max_len}-t{test_fraction}-s{split_seed}-c{fp}"
    key += f"-g{group_by}" if group_by else ""
    path = cache_dir() / "tokenized" / f"{key}.npz"
    if path.exists():
        z = np.load(path, allow_pickle=False)
        g = (z["train_g"], z["test_g"]) if group_by else (None, None)
        train = TokenizedData(z["train_ids"], z["train_len"], z["train_y"], g[0])
        test = TokenizedData(z["test_ids"], z["test_len"], z["test_y"], g[1])
        return Splits(train, test, [str(x) for x in z["names"]], str(z["split_hash"]))
    dd = split_dataset(name, test_fraction, split_seed)
    names = dd["train"].features["label"].names
    train, test = _encode(dd["train"], tokenizer, max_len), _encode(dd["test"], tokenizer, max_len)
    groups = {}
    if group_by:
        g_train, g_test = _group_codes(dd, group_by)
        train, test = dataclasses.replace(train, groups=g_train), dataclasses.replace(test, groups=g_test)
        groups = {"train_g": g_train, "test_g": g_test}
    h = hashlib.sha256()
    for part in (dd["train"], dd["test"]):
        h.update("\x00".join(list(part["text"])).encode())
    split_hash = h.hexdigest()[:16]
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}.npz")
    np.savez(
        tmp,
        train_ids=train.ids,
        train_len=train.lengths,
        train_y=train.labels,
        test_ids=test.ids,
        test_len=test.lengths,
        test_y=test.labels,
        names=np.asarray(names),
        split_hash=np.asarray(split_hash),
        **groups,
    )
    os.replace(tmp, path)
    return Splits(train, test, names, split_hash)
