"""How the report names and orders a cell's partition (the ``alpha`` column of the store).

The column holds a Dirichlet concentration (``0.1``, ``1.0``), ``iid``, or a natural partition
``natural:<column>`` (each client is one real source, e.g. ``natural:movie_name``). One order
everywhere: ``iid``, then natural partitions (by column), then Dirichlet levels by increasing alpha
(stronger skew first), then anything else by name.
"""

from __future__ import annotations

import math

NATURAL = "natural:"


def _float(a: object) -> float | None:
    try:
        x = float(a)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def partition_key(a: object) -> tuple[int, float, str]:
    """Sort key of one partition value (see the module docstring for the order)."""
    s = str(a)
    if s == "iid":
        return (0, 0.0, "")
    if s.startswith(NATURAL):
        return (1, 0.0, s)
    x = _float(s)
    return (2, x, "") if x is not None else (3, 0.0, s)


def sort_partitions(values) -> list[str]:
    """The distinct values of ``values`` as strings, in report order."""
    return sorted({str(v) for v in values}, key=partition_key)


def partition_label(a: object) -> str:
    """What a reader sees: ``Dirichlet α = 0.1``, ``IID``, ``natural (movie_name)``."""
    s = str(a)
    if s == "iid":
        return "IID"
    if s.startswith(NATURAL):
        return f"natural ({s[len(NATURAL) :]})"
    return f"Dirichlet α = {s}" if _float(s) is not None else s


def least_skewed(values) -> str | None:
    """The least label-skewed partition: ``iid`` if present, else the largest Dirichlet alpha; None
    when there is neither (a natural partition has no place on the skew scale)."""
    vals = {str(v) for v in values}
    if "iid" in vals:
        return "iid"
    floats = [v for v in vals if _float(v) is not None]
    return max(floats, key=float) if floats else None
