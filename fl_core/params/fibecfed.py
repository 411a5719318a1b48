"""Params and check of ``fibecfed`` (:mod:`fl_core.methods.fibecfed`)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from fl_core.params.base import declare
from fl_core.params.lora import LORA_DROPOUT
from fl_core.strict import Strict


class FibecFedParams(Strict):
    lora_r: int = Field(8, ge=1)
    lora_alpha: float = Field(16, gt=0)
    lora_dropout: float = Field(LORA_DROPOUT, ge=0, lt=1, description="shared with lora, lora_budget")
    target_modules: tuple[str, ...] = Field(("query", "value"), min_length=1)
    curriculum: bool = Field(True, description="Fisher curriculum + pacing (YAML on/off/true/false)")
    pacing_b0: float = Field(0.6, gt=0, le=1)
    pacing_a: float = Field(0.8, gt=0)
    n_gal: int | Literal["all"] | None = Field(
        None, description="GAL count; default round(0.75·L) half up, ⌊0.75·L + ½⌋; 'all' = no PL"
    )
    gal_samples: int = Field(10, ge=1)
    gal_eps: float = Field(0.5, gt=0)
    mask_ratio: float = Field(
        0.05, ge=0, lt=1, description="share of PL neurons masked; 0 = no sparse update"
    )
    mask_epochs: int = Field(3, ge=1)
    mask_ema: float = Field(0.5, ge=0, lt=1)
    local_epochs: int | None = Field(
        None,
        ge=1,
        description="its own local epochs per round (the paper: 2); default the grid's fl.local_epochs",
    )


def check_fibecfed(params: FibecFedParams, num_blocks: int) -> None:
    n = params.n_gal
    if isinstance(n, int) and not 0 <= n <= num_blocks:
        raise ValueError(
            f"n_gal={n} but the model has {num_blocks} blocks; allowed: 0..{num_blocks} or 'all'"
        )


declare("fibecfed", FibecFedParams, check_fibecfed)
