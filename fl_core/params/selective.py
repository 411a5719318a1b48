"""Params and check of ``selective`` and its heuristic baselines ``rgn`` / ``snr``
(:mod:`fl_core.methods.selective`)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from fl_core.params.base import check_k, declare
from fl_core.strict import Strict


class _BudgetParams(Strict):
    b: int = Field(2, ge=0, description="blocks per client (homogeneous budget)")
    budget: Literal["homo", "hetero"] = "homo"
    b_min: int = Field(1, ge=0, description="hetero: smallest budget")
    b_max: int = Field(4, ge=0, description="hetero: largest budget")
    b_mean: float | None = Field(None, description="hetero: centre of the normal; None: b_min (half-normal)")
    b_std: float = Field(1.0, gt=0, description="hetero: scale of the normal")
    score_batches: int = Field(-1, ge=-1, description="batches in the scoring pass; -1: one local epoch")
    select_every: int = Field(1, ge=1, description="rounds between re-selections")


class SelectiveParams(_BudgetParams):
    score: Literal["grad", "rgn", "snr", "top", "bottom"] = "grad"
    lam: float = Field(0.1, ge=0, description="disagreement penalty on max-normalized scores (grad only)")
    fill_budget: bool = Field(
        True,
        description="grad: pad each client's MILP choice up to b_i by score, as the official "
        "find_selection_set (default); false: the unfilled MILP solution, an ablation",
    )


class HeuristicParams(_BudgetParams):
    pass


def check_selective(params: _BudgetParams, num_blocks: int) -> None:
    check_k(params, num_blocks)
    if params.score_batches == 0:
        raise ValueError("score_batches=0; allowed: -1 (one local epoch) or >= 1")
    if params.budget == "homo" and params.b > num_blocks:
        raise ValueError(f"b={params.b} but the model has {num_blocks} blocks; allowed: 0..{num_blocks}")
    if params.budget == "hetero" and not params.b_min <= params.b_max <= num_blocks:
        raise ValueError(
            f"b_min={params.b_min}, b_max={params.b_max}: need b_min <= b_max <= "
            f"{num_blocks} (the model's blocks)"
        )


declare("selective", SelectiveParams, check_selective)
declare("rgn", HeuristicParams, check_selective)
declare("snr", HeuristicParams, check_selective)
