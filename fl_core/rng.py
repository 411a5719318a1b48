"""Seeded random streams: every stream derives from the cell seed and a key, never from call order."""

from __future__ import annotations

import zlib

import numpy as np


def _key(k) -> int:
    return k if isinstance(k, int) and k >= 0 else zlib.crc32(str(k).encode())


def seeded_rng(seed: int, *key) -> np.random.Generator:
    """The stream ``key`` (ints, or strings hashed with CRC-32) of cell seed ``seed``: NumPy's
    ``SeedSequence(seed, spawn_key=key)``, so streams are independent and order-free."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=tuple(_key(k) for k in key)))


def torch_seed(seed: int, *key) -> int:
    """A torch seed drawn from the stream ``("torch", *key)``."""
    return int(seeded_rng(seed, "torch", *key).integers(2**62))
