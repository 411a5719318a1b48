"""Params of ``centralized`` (:mod:`fl_core.methods.centralized`): none, as ``full``."""

from __future__ import annotations

from fl_core.params.base import declare

declare("centralized")
