"""Params of ``random`` (:mod:`fl_core.methods.random_k`)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from fl_core.params.base import BlockCount, declare


class RandomParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    k: BlockCount = Field(2, description="blocks per client; a float in (0, 1): that share")
    mode: Literal["client", "server"] = "client"
    client_training: Literal["all", "selected"] = "all"


declare("random", RandomParams)
