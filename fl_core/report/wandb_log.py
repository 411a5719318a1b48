"""Log a finished report to W&B: one run (``job_type="report"``) in the sweep's group, with the
summary tables as W&B Tables and the figures as images. Offline unless ``WANDB_MODE`` / the grid
says otherwise; ``wandb: {mode: off}`` skips it. Best-effort: any failure is a warning, never an
error (the local report is the source of truth)."""

from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path

import pandas as pd

from fl_core.config import WandbConfig

log = logging.getLogger(__name__)


def log_report(
    cfg: WandbConfig,
    group: str,
    root: str | Path,
    tables: dict[str, pd.DataFrame],
    figures: list[Path],
    summary: dict | None = None,
) -> bool:
    """Returns True if the report was logged, False if W&B is off or anything failed."""
    if cfg.mode == "off":
        return False
    run = None
    try:
        os.environ.setdefault("WANDB_MODE", cfg.mode)
        os.environ.setdefault("WANDB_SILENT", "true")
        import wandb

        wdir = Path(root) / "wandb"
        wdir.mkdir(parents=True, exist_ok=True)
        run = wandb.init(
            project=cfg.project,
            entity=cfg.entity,
            group=group,
            name=f"report-{group}",
            job_type="report",
            dir=str(wdir),
            reinit="create_new",
            settings=wandb.Settings(console="off", silent=True),
        )
        payload = {}
        for name, df in tables.items():
            payload[f"table/{name}"] = wandb.Table(dataframe=df.astype(object).where(df.notna(), None))
        for p in figures:
            if p.suffix == ".png":
                payload[f"figure/{p.name[: -len('.png')]}"] = wandb.Image(str(p))
        run.log(payload)
        if summary:
            run.summary.update(summary)
        run.finish()
        return True
    except Exception as err:  # noqa: BLE001 — W&B must never fail the report
        log.warning("W&B report logging failed (%s); the report is complete on disk", err)
        if run is not None:
            with contextlib.suppress(Exception):
                run.finish(exit_code=1)
        return False
