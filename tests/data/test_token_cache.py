"""The tokenization cache is keyed by the rows' content: changed rows under the same name are
tokenized again, never read from a stale cache."""

from __future__ import annotations

import datasets as hfd
import numpy as np

import fl_core.data.splits as splits
from fl_core.models.registry import load_tokenizer


def _dd(texts: list[str], labels: list[int]) -> hfd.DatasetDict:
    feats = hfd.Features({"text": hfd.Value("string"), "label": hfd.ClassLabel(names=["a", "b"])})
    part = hfd.Dataset.from_dict({"text": texts, "label": labels}, features=feats)
    return hfd.DatasetDict(train=part, test=part)


def test_changed_rows_under_one_name_are_tokenized_again(monkeypatch):
    tok = load_tokenizer("minilm-l6")
    versions = iter(
        [_dd(["good film", "bad film"], [0, 1])] * 2 + [_dd(["a new review", "bad film"], [1, 1])] * 2
    )
    monkeypatch.setattr(splits, "split_dataset", lambda *a, **k: next(versions))
    splits.source_fingerprint.cache_clear()
    first = splits.load_splits("changing_source", tok, 16)
    splits.source_fingerprint.cache_clear()  # a new process: the rows changed since
    second = splits.load_splits("changing_source", tok, 16)
    assert list(first.train.labels) == [0, 1] and list(second.train.labels) == [1, 1]
    assert not np.array_equal(first.train.ids, second.train.ids) and first.split_hash != second.split_hash
    splits.source_fingerprint.cache_clear()
