"""Params of ``random`` (:mod:`fl_core.methods.random_k`)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from fl_core.params.base import BlockCount, declare
from fl_core.strict import Strict


class RandomParams(Strict):
    k: BlockCount = Field(2, description="blocks per client; a float in (0, 1): that share")
    mode: Literal["client", "server"] = "client"
    client_training: Literal["all", "selected"] = "all"


declare("random", RandomParams)
