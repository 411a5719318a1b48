"""Weights & Biases logging: one W&B run per cell, grouped by sweep. Offline unless the user set
``WANDB_MODE``; ``wandb: {mode: off}`` disables it. The local store is the source of truth, so any
W&B failure is logged as a warning and never fails a run."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from fl_core.config import RunConfig, WandbConfig

log = logging.getLogger(__name__)


class Tracker:
    def __init__(self, cfg: WandbConfig, group: str, root: str | Path) -> None:
        self.cfg = cfg
        self.group = group
        self.dir = Path(root) / "wandb"
        self.run = None
        self.enabled = cfg.mode != "off"

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

            self.dir.mkdir(parents=True, exist_ok=True)
            self.run = wandb.init(
                project=self.cfg.project,
                entity=self.cfg.entity,
                group=self.group,
                name=name,
                config={**cell.model_dump(mode="json"), "config_hash": cell.hash()},
                dir=str(self.dir),
                reinit="create_new",
                settings=wandb.Settings(console="off", silent=True),
            )

        self._call("init", _start)

    def log(self, row: dict[str, Any]) -> None:
        if self.run is not None:
            self._call("log", self.run.log, {k: v for k, v in row.items() if k != "round"}, step=row["round"])

    def finish(self, summary: dict[str, Any]) -> None:
        if self.run is not None:
            self._call("summary", self.run.summary.update, summary)
            self._call("finish", self.run.finish)
        self.run = None
