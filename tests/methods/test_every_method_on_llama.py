"""Every registered method runs one round on the random decoder tiny-llama (RANDOM WEIGHTS)."""

from __future__ import annotations

import math

import pytest

from fl_core.methods import METHODS
from fl_core.simulator import run_cell
from tests.conftest import TINY_FL, tiny_cell

# tiny-llama's 49,152 x 32 embedding is 96 % of its weights, so at a quarter of full fine-tuning
# memory nothing fits: the budget methods get the FLOP and upload budgets only
PARAMS = {
    "tiny": {"candidates": ["tiny-llama"], "budget": 0.5, "constrain": ["flops", "upload"]},
    "lora_budget": {"budget": 0.9, "constrain": ["flops", "upload"]},
    "top_k": {"k": 0.5},  # a share of the blocks: 2 of 4
}


@pytest.mark.parametrize("name", sorted(METHODS))
def test_method_runs_one_round_on_tiny_llama(name):
    cell = tiny_cell(name, **PARAMS.get(name, {})).model_copy(
        update={"model": "tiny-llama", "fl": TINY_FL.model_copy(update={"rounds": 1})}
    )
    res = run_cell(cell, progress=False)
    assert res.status == "ok" and res.info["model_is_random"] and res.info["num_blocks"] == 4
    assert math.isfinite(res.rounds[-1]["loss"]) and 0 <= res.rounds[-1]["accuracy"] <= 1
    trained = [s for s in res.selections if not s.get("sit_out")]
    assert trained and any(s["blocks"] or s["head"] for s in trained)
    if name == "top_k":
        assert all(s["blocks"] == [2, 3] for s in trained)
