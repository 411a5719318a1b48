"""The private local Ray admits only its driver, and no worker sees the driver's secrets.

Slow (starts Ray; the unauthenticated client waits for its connection to fail): `make test-all`."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from fl_core.sweep import run_sweep
from fl_core.validate import parse_grid
from tests.conftest import offline_runs, tiny_grid_dict

ray = pytest.importorskip("ray", reason="the Ray backend needs the [ray] extra")
pytestmark = pytest.mark.slow

FAKE_KEY = "c0ffee" * 6 + "beef"  # 40 hex digits, fake


@pytest.fixture(scope="module")
def local_ray():
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("WANDB_API_KEY", FAKE_KEY)
        mp.setenv("HF_TOKEN", "hf_" + FAKE_KEY)
        mp.delenv("RAY_ADDRESS", raising=False)
        from fl_core.ray_backend import init_ray

        if ray.is_initialized():
            ray.shutdown()
        init_ray(num_cpus=2)
        yield ray._private.worker.global_worker.node.address
        ray.shutdown()


def _connect(address: str, tmp_path, **env) -> subprocess.CompletedProcess:
    """A separate client on this host, without the driver's token unless given one."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    clean.update(HOME=str(tmp_path), **env)  # no ~/.ray/auth_token to fall back on
    code = (
        f"import ray; ray.init(address={address!r}, log_to_driver=False); "
        "print('RAN', ray.get(ray.remote(lambda: 6 * 7).remote()))"
    )
    return subprocess.run(
        [sys.executable, "-c", code], env=clean, capture_output=True, text=True, timeout=180
    )


def test_local_ray_rejects_a_client_without_the_token(local_ray, tmp_path):
    assert os.environ.get("RAY_AUTH_MODE") == "token"
    intruder = _connect(local_ray, tmp_path)
    assert intruder.returncode != 0 and "RAN" not in intruder.stdout
    assert "AuthenticationError" in intruder.stderr or "InvalidAuthToken" in intruder.stderr
    wrong = _connect(local_ray, tmp_path, RAY_AUTH_MODE="token", RAY_AUTH_TOKEN="0" * 64)
    assert wrong.returncode != 0 and "RAN" not in wrong.stdout
    # control: the same client holding the driver's token gets in, so the refusals are the auth
    ok = _connect(local_ray, tmp_path, RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=os.environ["RAY_AUTH_TOKEN"])
    assert ok.returncode == 0 and "RAN 42" in ok.stdout, ok.stderr[-2000:]


def test_workers_see_no_secret_and_a_ray_sweep_writes_none(local_ray, tmp_path, monkeypatch):
    worker_env = ray.get(ray.remote(lambda: dict(os.environ)).remote())
    assert "WANDB_API_KEY" not in worker_env and "HF_TOKEN" not in worker_env
    assert not any(FAKE_KEY in v for v in worker_env.values())
    assert os.environ["WANDB_API_KEY"] == FAKE_KEY  # the driver still has it
    monkeypatch.setenv("WANDB_MODE", "offline")
    grid = parse_grid(tiny_grid_dict(tmp_path, wandb={"mode": "offline"}, threads_per_cell=1))
    rep = run_sweep(grid, backend="ray", progress=False)
    assert rep.statuses == {"ok": 2}
    assert len(offline_runs(grid.output_dir)) == 2  # logged by the driver, one run per cell
    leaked = [p for p in tmp_path.rglob("*") if p.is_file() and FAKE_KEY.encode() in p.read_bytes()]
    assert leaked == []
