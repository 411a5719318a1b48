"""Params of ``lora`` (:mod:`fl_core.methods.lora`) and the shared adapter dropout."""

from __future__ import annotations

from pydantic import Field

from fl_core.params.base import declare
from fl_core.strict import Strict

LORA_DROPOUT = 0.05  # shared default of lora / lora_budget / fibecfed (issue 12)


class LoraParams(Strict):
    lora_r: int = Field(8, ge=1, description="adapter rank")
    lora_alpha: float = Field(16, gt=0, description="LoRA alpha (scaling = alpha / r)")
    lora_dropout: float = Field(LORA_DROPOUT, ge=0, lt=1, description="shared with fibecfed, lora_budget")
    target_modules: tuple[str, ...] = Field(("query", "value"), min_length=1)


declare("lora", LoraParams)
