"""Params of the reference methods (:mod:`fl_core.methods.reference`)."""

from __future__ import annotations

from pydantic import Field

from fl_core.params.base import BlockCount, declare
from fl_core.strict import Strict


class KParams(Strict):
    k: BlockCount = Field(2, description="blocks trained (+ head); a float in (0, 1): that share")


declare("full")
declare("head")
declare("top_k", KParams)
declare("bottom_k", KParams)
