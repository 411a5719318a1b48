"""The one strict pydantic base of every config, params and claims schema: an unknown key is an error
(a typo fails naming the key), and a validated value is frozen."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
