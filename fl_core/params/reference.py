"""Params of the reference methods (:mod:`fl_core.methods.reference`)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from fl_core.params.base import BlockCount, declare


class KParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    k: BlockCount = Field(2, description="blocks trained (+ head); a float in (0, 1): that share")


declare("full")
declare("head")
declare("top_k", KParams)
declare("bottom_k", KParams)
