"""Params of ``fedtlu`` (:mod:`fl_core.methods.fedtlu`)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from fl_core.params.base import BlockCount, declare
from fl_core.strict import Strict

ScoreMode = Literal["block", "tensor_sum"]


class FedTLUParams(Strict):
    k: BlockCount | None = Field(None, description="blocks updated per round; None: L // 2")
    warmup_rounds: int = Field(0, ge=0, description="full FedAvg rounds before targeting starts")
    client_training: Literal["all", "selected"] = "all"
    rescore_every: int = Field(5, ge=1, description="`selected` only: every n-th round trains all blocks")
    score: ScoreMode = Field(
        "block", description="block: score of the block's whole update (default); tensor_sum: ablation"
    )


declare("fedtlu", FedTLUParams)
