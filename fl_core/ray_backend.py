"""Run a sweep's cells as Ray tasks, locally across cores or on an existing cluster (``RAY_ADDRESS``).

Workers return each finished cell to the driver, which writes it to the results store, so no shared
filesystem is needed for results. A task whose worker dies is retried by Ray (``ray.max_retries``);
checkpoints are only used when driver and workers share ``output_dir``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

from fl_core.config import GridConfig, RunConfig


def _run_remote(
    cell_dict: dict[str, Any], grid_dict: dict[str, Any], threads: int
) -> tuple[dict, dict, dict]:
    import torch

    from fl_core.config import GridConfig, RunConfig
    from fl_core.sweep import checkpoint_for, execute_cell
    from fl_core.tracking import Tracker

    torch.set_num_threads(threads)  # no oversubscription: one cell's threads = its CPUs
    cell, grid = RunConfig.model_validate(cell_dict), GridConfig.model_validate(grid_dict)
    tracker = Tracker(grid.wandb, group=grid.name, root=grid.output_dir)
    return execute_cell(cell, tracker, progress=False, checkpoint=checkpoint_for(grid, cell))


def init_ray(num_cpus: int | None = None) -> None:
    import ray

    if ray.is_initialized():
        return
    address = os.environ.get("RAY_ADDRESS")
    env = {
        "env_vars": {
            k: v
            for k, v in os.environ.items()
            if k.startswith(("HF_", "WANDB_", "LAYERBENCH_", "TOKENIZERS_"))
        }
    }
    if address:
        ray.init(address=address, runtime_env=env, log_to_driver=False)
    else:  # a private local Ray: no dashboard, no token prompt
        os.environ.setdefault("RAY_AUTH_MODE", "disabled")
        ray.init(
            num_cpus=num_cpus,
            include_dashboard=False,
            runtime_env=env,
            log_to_driver=False,
            configure_logging=False,
        )


def run_cells_ray(
    cells: list[RunConfig], grid: GridConfig
) -> Iterator[tuple[RunConfig, tuple[dict, dict, dict]]]:
    """Yield (cell, result) as cells finish, in completion order."""
    import ray

    if not cells:
        return
    init_ray()
    res = grid.ray
    task = ray.remote(_run_remote).options(
        num_cpus=res.cpus_per_cell,
        num_gpus=res.gpus_per_cell,
        max_retries=res.max_retries,
        retry_exceptions=False,
    )
    threads = grid.threads_per_cell or max(1, int(res.cpus_per_cell))
    grid_dict = grid.model_dump(mode="json")
    pending = {task.remote(c.model_dump(mode="json"), grid_dict, threads): c for c in cells}
    while pending:
        done, _ = ray.wait(list(pending), num_returns=1)
        for ref in done:
            cell = pending.pop(ref)
            try:
                yield cell, ray.get(ref)
            except Exception as err:  # noqa: BLE001 — retries exhausted: record the cell as failed
                from fl_core.sweep import failed_result

                yield (
                    cell,
                    (failed_result(cell, f"Ray task failed after {res.max_retries} retries: {err}"), {}, {}),
                )
