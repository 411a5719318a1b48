"""Learning rates chosen by ``layerbench tune``, read by the grid (``tuned: configs/tuned/<grid>.yaml``).

The file maps dataset -> method label -> lr. A method with its own ``lr`` in the grid keeps it.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from fl_core.config import ConfigError

if TYPE_CHECKING:
    from fl_core.config import GridConfig, MethodSpec


@lru_cache(maxsize=16)
def _read(path: str, mtime: float) -> dict:
    raw = yaml.safe_load(Path(path).read_text()) or {}
    if not isinstance(raw, dict) or not isinstance(raw.get("chosen"), dict):
        raise ConfigError(
            f"invalid tuned file {path}: expected a mapping with key 'chosen: {{dataset: {{label: lr}}}}'"
        )
    return raw


def read_tuned(path: str | Path) -> dict:
    p = Path(path)
    if not p.is_file():
        raise ConfigError(
            f"tuned: file {p} not found; run `layerbench tune <config>` first, or remove the 'tuned' key"
        )
    return _read(str(p), p.stat().st_mtime)


def load_tuned(path: str | Path, grid: GridConfig) -> dict[str, dict[str, float]]:
    """dataset -> label -> lr, checked against the grid: every (dataset, method without its own lr)
    has a positive lr, and no unknown dataset or label is named."""
    chosen = read_tuned(path)["chosen"]
    labels = {m.display for m in grid.methods}
    for d, per in chosen.items():
        if d not in grid.datasets:
            raise ConfigError(
                f"tuned file {path}: dataset '{d}' is not in the grid; allowed: {grid.datasets}"
            )
        for lab, lr in (per or {}).items():
            if lab not in labels:
                raise ConfigError(
                    f"tuned file {path}: {d}: unknown method label '{lab}'; allowed: {sorted(labels)}"
                )
            if not isinstance(lr, int | float) or isinstance(lr, bool) or not lr > 0:
                raise ConfigError(f"tuned file {path}: {d}.{lab}: lr must be a number > 0, got {lr!r}")
    missing = [
        f"{d}/{m.display}"
        for d in grid.datasets
        for m in grid.methods
        if m.lr is None and m.display not in (chosen.get(d) or {})
    ]
    if missing:
        raise ConfigError(f"tuned file {path}: no lr for {missing}; re-run `layerbench tune` to finish it")
    return chosen


def cell_lr(grid: GridConfig, dataset: str, method: MethodSpec) -> float | None:
    """The lr of this (dataset, method) cell: the method's own, else the tuned one, else None (fl.lr)."""
    if method.lr is not None:
        return method.lr
    if not grid.tuned:
        return None
    return float(read_tuned(grid.tuned)["chosen"][dataset][method.display])
