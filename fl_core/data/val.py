"""The validation split: a seeded, stratified share of the training rows (``data.val_fraction``).

With ``data.evaluate_on: val`` (tuning) the validation rows *replace* the test split before any
model exists, so nothing downstream can read a test row.
"""

from __future__ import annotations

import numpy as np
from sklearn.model_selection import train_test_split

from fl_core.data.splits import Splits


def carve_val(splits: Splits, fraction: float, seed: int, evaluate_on: str = "test") -> Splits:
    """``splits`` with ``fraction`` of train moved to ``val`` (stratified by label, seeded)."""
    if fraction <= 0:
        return splits
    y = splits.train.labels
    counts = np.bincount(y)
    strat = y if counts[counts > 0].min() >= 2 and round(fraction * len(y)) >= len(counts) else None
    rest, val = train_test_split(np.arange(len(y)), test_size=fraction, random_state=seed, stratify=strat)
    train, held = splits.train.subset(np.sort(rest)), splits.train.subset(np.sort(val))
    if evaluate_on == "val":  # the test split is dropped here, unread
        return Splits(train, held, splits.label_names, splits.split_hash, val=None)
    return Splits(train, splits.test, splits.label_names, splits.split_hash, val=held)
