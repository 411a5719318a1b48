"""Params of the reference methods (:mod:`fl_core.methods.reference`)."""

from __future__ import annotations

from pydantic import Field

from fl_core.params.base import declare
from fl_core.strict import Strict


class KParams(Strict):
    k: int = Field(2, ge=0, description="number of blocks trained (+ head)")


declare("full")
declare("head")
declare("top_k", KParams)
declare("bottom_k", KParams)
