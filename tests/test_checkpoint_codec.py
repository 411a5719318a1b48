"""Checkpoints without pickle: the codec round-trips every value a cell checkpoints, bitwise, and
rebuilds nothing it did not write (no class outside fl_core, no __init__ run)."""

from __future__ import annotations

import dataclasses
import json
import math
import struct

import numpy as np
import pytest
import torch
from pydantic import BaseModel

from fl_core import simulator
from fl_core.checkpoint import Checkpoint, CheckpointError, decode, encode
from fl_core.cost_record import CostRecord
from fl_core.errors import CellNotRunnable
from fl_core.methods import METHODS
from fl_core.methods.base import TrainPlan
from tests.conftest import tiny_cell


def same(a, b, where="state"):
    """Deep, type-strict, bitwise equality (``==`` would hide float bits, dtypes, container types)."""
    assert type(a) is type(b), f"{where}: {type(a)} vs {type(b)}"
    if isinstance(a, torch.Tensor):
        assert a.dtype == b.dtype and a.shape == b.shape and a.requires_grad == b.requires_grad, where
        raw = [t.detach().contiguous().reshape(-1).view(torch.uint8) for t in (a, b)]
        assert torch.equal(*raw), where
    elif isinstance(a, np.ndarray | np.generic):
        assert a.dtype == b.dtype and np.shape(a) == np.shape(b), where
        assert np.asarray(a).tobytes() == np.asarray(b).tobytes(), where
    elif isinstance(a, float):
        assert struct.pack("<d", a) == struct.pack("<d", b), f"{where}: {a!r} vs {b!r}"
    elif isinstance(a, dict):
        assert list(a) == list(b), f"{where}: keys"
        for k in a:
            same(a[k], b[k], f"{where}[{k!r}]")
    elif isinstance(a, list | tuple):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            same(x, y, f"{where}[{i}]")
    elif isinstance(a, BaseModel):
        assert a.model_fields_set == b.model_fields_set, where
        same(dict(a.__dict__), dict(b.__dict__), f"{where}.{type(a).__name__}")
    elif dataclasses.is_dataclass(a):
        same(dict(vars(a)), dict(vars(b)), f"{where}.{type(a).__name__}")
    else:  # str, int, bool, None, set, frozenset
        assert a == b, f"{where}: {a!r} vs {b!r}"


def roundtrip(state, tmp_path):
    ckpt = Checkpoint(tmp_path / "c.pt")
    ckpt.save(state)
    return ckpt.load()


def test_plain_and_tricky_values_round_trip_bitwise(tmp_path):
    w = torch.randn(3, 4)
    arr = np.arange(6, dtype=np.int64).reshape(2, 3)
    state = {
        "floats": [0.1, -0.0, math.inf, -math.inf, 1e-310, 2.0**60 + 1],
        "ints": [0, -1, 2**70, True, False, None],
        "int_keys": {3: "a", 1: {2: [1, 2]}, (0, 1): "tuple key"},
        "tagged": {"__t__": "not a tag", "x": 1},
        "tuple": (1, "a", (2.5, None)),
        "set": {3, 1, 2},
        "frozen": frozenset({"x", "y"}),
        "tensors": {
            "f32": w,
            "bf16": torch.randn(5).to(torch.bfloat16),
            "i64": torch.arange(4),
            "bool": torch.tensor([True, False]),
            "empty": torch.zeros(0, 3),
            "scalar": torch.tensor(2.5),
            "grad": torch.ones(2, requires_grad=True),
            "param": torch.nn.Parameter(torch.ones(2)),
            "strided": torch.arange(12.0).reshape(3, 4).t(),
        },
        "arrays": {
            "i64": arr,
            "f64": np.linspace(0, 1, 7),
            "u8": np.array([1, 255], dtype=np.uint8),
            "big_endian": np.array([1.5, 2.5], dtype=">f4"),
            "zero_d": np.array(3.25),
            "empty": np.zeros((0, 2)),
            "str": np.array(["ab", "c"]),
        },
        "np_scalars": [np.float64(0.1), np.int64(-7), np.float32(1.5), np.bool_(True)],
        "alias": [w, w, arr, arr],
        "dataclass": CostRecord(round=0, client=1, kind="train", flops_fwd=1.5, wall_s=0.1),
        "plan": TrainPlan(blocks=frozenset({0, 1}), head=False, info={"sit_out": 1}),
    }
    back = roundtrip(state, tmp_path)
    same(back, state)
    assert back["alias"][0] is back["alias"][1] and back["alias"][2] is back["alias"][3]


def test_pydantic_models_keep_their_fields_set(tmp_path):
    from fl_core.config import FLConfig

    cfg = FLConfig(rounds=7)
    back = roundtrip({"cfg": cfg}, tmp_path)["cfg"]
    same(back, cfg)
    assert back == cfg


@pytest.mark.parametrize(
    "value", [lambda: 0, object(), np.array([object()]), torch.zeros(2).to_sparse(), slice(1)]
)
def test_unsupported_values_fail_at_save_and_write_nothing(tmp_path, value):
    ckpt = Checkpoint(tmp_path / "c.pt")
    with pytest.raises(CheckpointError, match=r"state\[.x.\]"):
        ckpt.save({"x": value})
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "bad",
    [
        {"__t__": "obj", "type": "os:system", "v": {}},
        {"__t__": "obj", "type": "builtins:eval", "v": {}},
        {"__t__": "obj", "type": "fl_core.checkpoint:Checkpoint", "v": {}},  # in fl_core, not data
        {"__t__": "obj", "type": "fl_core.sweep:run_sweep", "v": {}},
        {"__t__": "obj", "type": "fl_core:__builtins__", "v": {}},
        # a foreign dataclass reached through an fl_core module's attributes
        {"__t__": "obj", "type": "fl_core.checkpoint:torch._export.ExportDynamoConfig", "v": {}},
        {"__t__": "obj", "type": "fl_core.checkpoint:BaseModel", "v": {}},  # imported into fl_core
        {"__t__": "obj", "type": "fl_core.report.load:MethodSpec", "v": {}},  # fl_core's, named elsewhere
        {"__t__": "ndarray", "key": "t0", "dtype": "O", "shape": [1]},
        {"__t__": "tensor", "key": "nosuch"},
        {"__t__": "pickle", "v": "gASV"},
    ],
)
def test_decoder_refuses_what_it_did_not_write(bad):
    with pytest.raises(CheckpointError):
        decode(json.dumps({"x": bad}), {"t0": torch.zeros(8, dtype=torch.uint8)})


def test_encode_stores_tensors_outside_the_json():
    tensors, text = encode({"w": torch.ones(1000)})
    assert len(text) < 200 and list(tensors) == ["t0"]


# budget-aware methods: budgets that fit the 2-block random test model (as in test_checkpoint.py)
FITTING = {
    "tiny": {"budget": 0.5, "candidates": ["tiny-bert"], "constrain": ["upload"]},
    "lora_budget": {"budget": 0.5, "constrain": ["upload"]},
}


@pytest.mark.parametrize("method", sorted(METHODS))
def test_every_methods_checkpoint_round_trips_bitwise(tmp_path, method):
    """The exact state ``run_cell`` checkpoints after round 0 (values, method state, touched set,
    cost records, logs) comes back from disk equal in type and bits."""
    saved = []

    class Capture(Checkpoint):
        def save(self, state):
            super().save(state)
            same(self.load(), state)  # now: the live state keeps growing after the save
            saved.append(state["round"])

    try:
        simulator.run_cell(
            tiny_cell(method, **FITTING.get(method, {})),
            progress=False,
            checkpoint=Capture(tmp_path / "c.pt"),
        )
    except CellNotRunnable as err:
        pytest.skip(f"{method} cannot run on the tiny cell: {err}")
    assert saved == [0], "run_cell should checkpoint after round 0 of 2"
