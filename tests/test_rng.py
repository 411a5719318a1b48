"""seeded_rng: the streams every random choice draws from (cell seed + key, never call order)."""

import zlib

import numpy as np

from fl_core.rng import seeded_rng, torch_seed


def test_same_numbers_as_the_seed_sequence_spelled_out():
    # ints are spawn keys as they are; strings (and negative ints) their CRC-32
    seq = np.random.SeedSequence(7, spawn_key=(zlib.crc32(b"data"), 3, zlib.crc32(b"-1")))
    want = np.random.default_rng(seq).integers(2**62, size=5)
    assert (seeded_rng(7, "data", 3, -1).integers(2**62, size=5) == want).all()


def test_streams_depend_on_seed_and_key_only():
    a = seeded_rng(0, "schedule").random(3)
    seeded_rng(0, "other").random(100)  # drawing elsewhere changes nothing
    assert (seeded_rng(0, "schedule").random(3) == a).all()
    assert not (seeded_rng(1, "schedule").random(3) == a).all()
    assert not (seeded_rng(0, "schedule", 0).random(3) == a).all()


def test_torch_seed_is_the_torch_stream():
    assert torch_seed(3, 1, 2) == int(seeded_rng(3, "torch", 1, 2).integers(2**62))
