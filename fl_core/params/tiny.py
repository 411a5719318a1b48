"""Params and checks of ``tiny`` and ``lora_budget`` (:mod:`fl_core.methods.tiny`), and the budget
vocabulary the cost model shares (resources, memory backends, the LoRA targets it covers)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator

from fl_core.model_specs import MODELS
from fl_core.params.base import declare
from fl_core.params.lora import LORA_DROPOUT
from fl_core.strict import Strict

Backend = Literal["cpu", "cuda"]
Resource = Literal["memory", "flops", "upload"]
RESOURCES: tuple[Resource, ...] = ("memory", "flops", "upload")
LORA_COST_TARGETS = frozenset({"query", "key", "value"})  # d×d projections fed by the block input
LEVELS = (0.125, 0.25, 0.5)
CANDIDATES = ("minilm-l2", "minilm-l4", "minilm-l6")


class BudgetParams(Strict):
    budget: float | Literal["hetero"] = Field(
        0.25, description="device budget as a fraction of the reference's full fine-tuning cost, or 'hetero'"
    )
    levels: tuple[float, ...] = Field(LEVELS, min_length=1, description="fractions 'hetero' draws from")
    constrain: tuple[Resource, ...] = Field(RESOURCES, min_length=1, description="which budgets apply")
    reference: str | None = Field(
        None, description="model whose full fine-tuning cost the fractions refer to"
    )
    kernels: Backend = Field(
        "cpu", description="activation memory model of the devices (budget_model backend)"
    )
    memory_fit: Literal["measured", "analytic"] = Field(
        "measured",
        description="memory budgets fit on each configuration's measured peak (torch.profiler, cached; "
        "default) or on the analytic sum (ablation; always recorded as the cross-check)",
    )

    @field_validator("budget")
    @classmethod
    def _budget(cls, v):
        if v != "hetero" and not 0 < v <= 1:
            raise ValueError(f"budget must be in (0, 1] or 'hetero', got {v}")
        return v

    @field_validator("levels")
    @classmethod
    def _levels(cls, v):
        if not all(0 < x <= 1 for x in v):
            raise ValueError(f"levels must be in (0, 1], got {list(v)}")
        return v

    @field_validator("constrain")
    @classmethod
    def _constrain(cls, v):
        if len(set(v)) != len(v):
            raise ValueError(f"constrain lists a resource twice: {list(v)}")
        return v


def _check_model_name(name: str, key: str) -> None:
    if name not in MODELS and not Path(name).is_dir():
        raise ValueError(f"{key}: unknown model '{name}'; allowed: {sorted(MODELS)} or a local HF model dir")


class TinyParams(BudgetParams):
    candidates: tuple[str, ...] = Field(CANDIDATES, min_length=1, description="architectures to choose from")
    schedule: Literal["suffix", "successive"] = "suffix"


class LoraBudgetParams(BudgetParams):
    ranks: tuple[int, ...] = Field(
        (32, 16, 8, 4, 2, 1), min_length=1, description="ranks to try, largest fitting wins"
    )
    lora_alpha: float = Field(16, gt=0)
    lora_dropout: float = Field(LORA_DROPOUT, ge=0, lt=1, description="shared with lora, fibecfed")
    target_modules: tuple[str, ...] = Field(("query", "value"), min_length=1)

    @field_validator("ranks")
    @classmethod
    def _ranks(cls, v):
        if not all(r >= 1 for r in v):
            raise ValueError(f"ranks must be >= 1, got {list(v)}")
        return v


def check_tiny(params: TinyParams, num_blocks: int) -> None:
    for i, c in enumerate(params.candidates):
        _check_model_name(c, f"candidates[{i}]")
    if params.reference is not None:
        _check_model_name(params.reference, "reference")


def check_lora_budget(params: LoraBudgetParams, num_blocks: int) -> None:
    if params.reference is not None:
        _check_model_name(params.reference, "reference")
    unknown = set(params.target_modules) - LORA_COST_TARGETS
    if unknown:
        raise ValueError(
            f"target_modules: the cost model covers {sorted(LORA_COST_TARGETS)}, got {sorted(unknown)}"
        )


declare("tiny", TinyParams, check_tiny)
declare("lora_budget", LoraBudgetParams, check_lora_budget)
