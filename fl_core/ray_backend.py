"""Run a sweep's cells as Ray tasks, locally across cores or on an existing cluster (``RAY_ADDRESS``).

Workers return each finished cell to the driver, which writes it to the results store and logs it
to W&B, so no shared filesystem is needed for results. A task whose worker dies is retried by Ray
(``ray.max_retries``); checkpoints are only used when driver and workers share ``output_dir``.

Secrets stay with the driver: workers get only the variables in :data:`FORWARD` (offline flags, cache
paths, thread settings) and never one that looks like a credential. The private local Ray keeps Ray's
token authentication on with a fresh random token held by the driver, and the credential-like
variables are hidden while its processes start, so local workers do not inherit them either.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import re
import secrets
from collections.abc import Iterator, Mapping
from typing import Any

from fl_core.cell import cell_name, checkpoint_for, execute_cell, failed_result
from fl_core.config import ConfigError, GridConfig, RunConfig
from fl_core.tracking import Tracker


def ray_installed() -> bool:
    return importlib.util.find_spec("ray") is not None


def require_ray(todo: int, grid: GridConfig) -> None:
    """Raise a :class:`ConfigError` (one line, rc 2) when ``todo`` cells are to run on Ray and it is not
    installed; a grid with nothing left to run (all cells published or done) never needs Ray."""
    if todo and not ray_installed():
        raise ConfigError(
            f"{todo} cells of grid {grid.name!r} are to run on Ray (backend: ray), which is not installed: "
            "`make ray` (or pip install -e '.[ray]'), or pass --backend sequential"
        )


def _run_remote(
    cell_dict: dict[str, Any], grid_dict: dict[str, Any], threads: int
) -> tuple[dict, dict, dict]:
    import torch

    torch.set_num_threads(threads)  # no oversubscription: one cell's threads = its CPUs
    cell, grid = RunConfig.model_validate(cell_dict), GridConfig.model_validate(grid_dict)
    # no tracker here: the driver logs the finished cell to W&B (run_cells_ray)
    return execute_cell(cell, None, progress=False, checkpoint=checkpoint_for(grid, cell))


# what a worker needs: offline flags, cache paths, thread settings; nothing else reaches it
FORWARD = (
    "HF_HUB_OFFLINE",
    "HF_DATASETS_OFFLINE",
    "HF_HUB_DISABLE_TELEMETRY",
    "HF_HOME",
    "HF_HUB_CACHE",
    "HF_DATASETS_CACHE",
    "HF_ASSETS_CACHE",
    "TRANSFORMERS_OFFLINE",
    "TRANSFORMERS_CACHE",
    "LAYERBENCH_CACHE",
    "TOKENIZERS_PARALLELISM",
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
)
# a credential by name: WANDB_API_KEY, HF_TOKEN, AWS_SECRET_ACCESS_KEY... (not TOKENIZERS_PARALLELISM)
SECRET = re.compile(r"(^|_)(KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIALS?|AUTH)(_|$)", re.IGNORECASE)


def worker_env(environ: Mapping[str, str]) -> dict[str, str]:
    """The variables forwarded to Ray workers: those in ``FORWARD`` that are set, never a secret."""
    return {k: environ[k] for k in FORWARD if k in environ and not SECRET.search(k)}


@contextlib.contextmanager
def _secrets_hidden(keep: tuple[str, ...] = ("RAY_AUTH_TOKEN", "RAY_AUTH_MODE")) -> Iterator[None]:
    """Hide credential-like variables while local Ray processes start (they inherit the env)."""
    hidden = {k: os.environ.pop(k) for k in list(os.environ) if SECRET.search(k) and k not in keep}
    try:
        yield
    finally:
        os.environ.update(hidden)


def _use_token_auth() -> None:
    """Ray's token auth without a prompt: the driver holds a fresh random token, never written to
    disk. Ray reads ``RAY_AUTH_*`` when imported, so its config and token cache are refreshed (as
    Ray's own ``authentication_test_utils.reset_auth_token_state`` does)."""
    from ray._raylet import AuthenticationTokenLoader, Config

    os.environ["RAY_AUTH_MODE"] = "token"
    os.environ.pop("RAY_AUTH_TOKEN_PATH", None)
    os.environ.setdefault("RAY_AUTH_TOKEN", secrets.token_hex(32))
    Config.initialize("")
    AuthenticationTokenLoader.instance().reset_cache()


def init_ray(num_cpus: int | None = None) -> None:
    """Join ``RAY_ADDRESS`` (its own auth settings apply) or start a private, token-protected Ray."""
    import ray

    if ray.is_initialized():
        return
    address = os.environ.get("RAY_ADDRESS")
    env = {"env_vars": worker_env(os.environ)}
    if address:
        ray.init(address=address, runtime_env=env, log_to_driver=False)
        return
    _use_token_auth()
    with _secrets_hidden():
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
    tracker = Tracker(grid.wandb, group=grid.name, root=grid.output_dir)
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
                out = ray.get(ref)
            except Exception as err:  # noqa: BLE001 — retries exhausted: record the cell as failed
                out = (failed_result(cell, f"Ray task failed after {res.max_retries} retries: {err}"), {}, {})
            tracker.replay(cell, cell_name(cell), out[1].get("rounds", []), out[0])
            yield cell, out
