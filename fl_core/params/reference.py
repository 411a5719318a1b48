"""Params of the reference methods (:mod:`fl_core.methods.reference`)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from fl_core.params.base import declare


class KParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    k: int = Field(2, ge=0, description="number of blocks trained (+ head)")


declare("full")
declare("head")
declare("top_k", KParams)
declare("bottom_k", KParams)
