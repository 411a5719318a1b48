"""The real SmolLM2-135M (packaged GGUF, dequantized to fp32 once and cached): its block view, sane
weights, and a federated cell that trains two steps. Slow (the first load dequantizes, ~25 s)."""

from __future__ import annotations

import math

import pytest
import torch

from fl_core.config import DataConfig, FLConfig
from fl_core.models import HEAD, build_model, load_tokenizer
from fl_core.simulator import run_cell
from tests.conftest import tiny_cell

pytestmark = pytest.mark.slow


def test_smollm2_block_view_and_sane_weights():
    m = build_model("smollm2-135m", 5, seed=0, task="lm")
    a = m.arch
    assert (m.num_blocks, a.hidden, a.heads, a.kv_heads, a.intermediate) == (30, 576, 9, 3, 1536)
    assert not m.is_random and m.tied and m.names_in(HEAD) == ["model.norm.weight"]
    assert 134e6 < sum(p.numel() for p in m.hf.parameters()) < 135e6
    tok = load_tokenizer("smollm2-135m")
    enc = tok(
        "The government said on Monday that the economy grew faster than expected.", return_tensors="pt"
    )
    m.hf.eval()
    with torch.no_grad():
        logits, target = m.loss_view(
            m.forward(enc.input_ids, enc.attention_mask), enc.input_ids, enc.attention_mask, None
        )
        loss = float(torch.nn.functional.cross_entropy(logits, target))
    assert loss < 0.6 * math.log(a.vocab)  # pretrained: far below a uniform guess (ln V = 10.8)


def test_smollm2_cell_trains_two_steps():
    cell = tiny_cell("top_k", k=2).model_copy(
        update={
            "model": "smollm2-135m",
            "fl": FLConfig(
                num_clients=2, clients_per_round=2, rounds=1, local_steps=1, batch_size=4, max_len=16
            ),
            "data": DataConfig(max_train_samples=16, max_test_samples=8),
        }
    )
    res = run_cell(cell, progress=False)
    assert res.status == "ok" and not res.info["model_is_random"] and res.info["num_blocks"] == 30
    assert sum(1 for c in res.costs if c["kind"] == "train") == 2
    assert all(s["blocks"] == [28, 29] for s in res.selections)
