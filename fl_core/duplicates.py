"""Duplicate rows of a grid: cells whose resolved runs are the same computation, run once.

Two cells are one run when everything that changes their numbers is equal once each method's params
are resolved (:meth:`Method.resolve`: e.g. two budgets that give LoRA the same rank are both ``lora``
at that rank) and, for a method the partition cannot change (:attr:`Method.partition_free`, e.g.
``centralized``), the partition is set aside. The first cell in grid order runs; each later one is
recorded with status ``duplicate`` and ``same run as <label>`` and never runs, so no ranking counts
one computation twice (issue 26).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Callable
from functools import cache
from typing import Any

from fl_core.cell import base_result, cell_name
from fl_core.config import RunConfig
from fl_core.errors import CellNotRunnable
from fl_core.methods import METHODS, Method, validate_params
from fl_core.models import num_blocks

DUPLICATE = "duplicate"


@cache
def _num_labels(dataset: str) -> int:
    from fl_core.data import load_source

    raw = load_source(dataset)
    ds = raw["train"] if hasattr(raw, "keys") else raw
    return ds.features["label"].num_classes


def _resolve(
    cell: RunConfig, num_labels: Callable[[str], int], cache: dict[str, tuple[str, dict]]
) -> tuple[str, dict]:
    """(method, params) ``cell`` runs; the partition never changes it, so one resolution (a budget
    method's may measure memory) serves every partition of the same cell (``cache``)."""
    key = json.dumps({**cell.model_dump(mode="json"), "alpha": None}, sort_keys=True)
    if key in cache:
        return cache[key]
    cls = METHODS[cell.method.name]
    params = validate_params(cell.method.name, cell.method.params, num_blocks(cell.model))
    out = (cell.method.name, params.model_dump(mode="json"))
    if cls.resolve.__func__ is not Method.resolve.__func__:  # only then is the label count needed
        # one that cannot run keeps its own key: the cell says why when it is tried
        with contextlib.suppress(CellNotRunnable, ValueError):
            out = cls.resolve(params, cell, num_labels(cell.dataset))
    cache[key] = out
    return out


def run_key(
    cell: RunConfig,
    num_labels: Callable[[str], int] = _num_labels,
    cache: dict[str, tuple[str, dict]] | None = None,
) -> str:
    """A hash of what ``cell`` computes (its label and, if partition-free, its partition set aside)."""
    cls = METHODS[cell.method.name]
    name, resolved = _resolve(cell, num_labels, {} if cache is None else cache)
    d: dict[str, Any] = cell.model_dump(mode="json")
    d["method"] = {"name": name, "params": resolved}
    if cls.partition_free:
        d["alpha"] = None
    return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]


def find_duplicates(
    cells: list[RunConfig], num_labels: Callable[[str], int] = _num_labels
) -> dict[str, RunConfig]:
    """Config hash of each cell that repeats an earlier cell's run -> that earlier cell."""
    first: dict[str, RunConfig] = {}
    out: dict[str, RunConfig] = {}
    cache: dict[str, tuple[str, dict]] = {}
    for c in cells:
        k = run_key(c, num_labels, cache)
        if k in first:
            out[c.hash()] = first[k]
        else:
            first[k] = c
    return out


def duplicate_result(cell: RunConfig, original: RunConfig) -> dict[str, Any]:
    """The store record of a cell that is the same run as ``original`` (nothing ran)."""
    same = {"label": original.method.display, "alpha": original.alpha, "config_hash": original.hash()}
    where = "" if original.alpha == cell.alpha else f" at partition {original.alpha}"
    return {
        **base_result(cell),
        "status": DUPLICATE,
        "reason": f"same run as {original.method.display}{where} ({cell_name(original)})",
        "info": {"same_as": same},
    }
