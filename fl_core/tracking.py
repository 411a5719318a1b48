"""Weights & Biases logging: one W&B run per cell, grouped by sweep. Offline unless the user set
``WANDB_MODE``; ``wandb: {mode: off}`` disables it. The local store is the source of truth, so any
W&B failure is logged as a warning and never fails a run.

W&B runs follow the store: a cell's run id is fixed by the grid name and the cell's config hash and
opened with ``resume="allow"``, so a resumed or re-run cell continues (online) or replaces (offline:
the earlier ``offline-run-*-<id>`` folders are removed) its run instead of adding one. The simulator
replays the rounds restored from a checkpoint, so the run's history always holds every round."""

from __future__ import annotations

import logging
import os
import re
import shutil
from pathlib import Path
from typing import Any

from fl_core.config import RunConfig, WandbConfig

log = logging.getLogger(__name__)


def run_id(group: str, cell: RunConfig) -> str:
    """Deterministic W&B run id of a cell in a grid (W&B allows letters, digits, ``-`` and ``_``)."""
    return f"{re.sub(r'[^A-Za-z0-9_-]+', '_', group)[:40]}-{cell.hash()}"


class Tracker:
    def __init__(self, cfg: WandbConfig, group: str, root: str | Path) -> None:
        self.cfg = cfg
        self.group = group
        self.dir = Path(root) / "wandb"
        self.run = None
        self.enabled = cfg.mode != "off"
        self._next_step = 0  # a resumed online run already holds the steps below this

    def _call(self, what: str, fn, *args, **kwargs) -> Any:
        if not self.enabled:
            return None
        try:
            return fn(*args, **kwargs)
        except Exception as err:  # noqa: BLE001 — W&B must never fail a run
            log.warning("W&B %s failed (%s); results are still in the local store", what, err)
            return None

    def start(self, cell: RunConfig, name: str) -> None:
        def _start():
            os.environ.setdefault("WANDB_MODE", self.cfg.mode)
            os.environ.setdefault("WANDB_SILENT", "true")
            import wandb

            rid = run_id(self.group, cell)
            for old in (self.dir / "wandb").glob(f"offline-run-*-{rid}"):  # replaced, not added to
                shutil.rmtree(old, ignore_errors=True)
            self.dir.mkdir(parents=True, exist_ok=True)
            self.run = wandb.init(
                project=self.cfg.project,
                entity=self.cfg.entity,
                group=self.group,
                name=name,
                id=rid,
                resume="allow",
                config={**cell.model_dump(mode="json"), "config_hash": cell.hash()},
                dir=str(self.dir),
                reinit="create_new",
                settings=wandb.Settings(console="off", silent=True),
            )
            self._next_step = int(self.run.step or 0)

        self._call("init", _start)

    def log(self, row: dict[str, Any]) -> None:
        if self.run is not None and row["round"] >= self._next_step:
            self._call("log", self.run.log, {k: v for k, v in row.items() if k != "round"}, step=row["round"])

    def replay(self, cell: RunConfig, name: str, rows: list[dict[str, Any]], result: dict[str, Any]) -> None:
        """Log a cell finished elsewhere (a Ray worker) from the driver, which alone holds W&B keys."""
        self.start(cell, name)
        for row in rows:
            self.log(row)
        self.finish({"status": result["status"], **result.get("summary", {})})

    def finish(self, summary: dict[str, Any]) -> None:
        if self.run is not None:
            self._call("summary", self.run.summary.update, summary)
            self._call("finish", self.run.finish)
        self.run = None
