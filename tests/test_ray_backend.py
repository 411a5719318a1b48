"""Ray backend: same results as sequential; a worker killed mid-cell is retried, nothing lost.

Slow (starts Ray, workers import torch): run by `make test-all`."""

import os
import signal
import threading
import time

import pytest

from fl_core.store import ResultStore
from fl_core.sweep import run_sweep
from fl_core.validate import parse_grid
from tests.conftest import tiny_grid_dict

ray = pytest.importorskip(
    "ray", reason="the Ray backend needs the [ray] extra (make bench BACKEND=ray installs it)"
)
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module", autouse=True)
def _ray():
    from fl_core.ray_backend import init_ray

    init_ray(num_cpus=2)
    yield
    ray.shutdown()


def _grid(tmp_path, sub, **over):
    d = tiny_grid_dict(
        tmp_path / sub,
        methods=[{"name": "full"}, {"name": "random", "params": {"k": 1}}],
        seeds=[0, 1],
        threads_per_cell=1,
        **over,
    )
    return parse_grid(d)


def test_ray_equals_sequential(tmp_path):
    g_ray, g_seq = _grid(tmp_path, "ray"), _grid(tmp_path, "seq")
    assert run_sweep(g_ray, backend="ray", progress=False).statuses == {"ok": 4}
    assert run_sweep(g_seq, backend="sequential", progress=False).statuses == {"ok": 4}
    for cell in g_ray.cells():
        a = ResultStore(g_ray.output_dir).load_table(cell.hash(), "rounds")
        b = ResultStore(g_seq.output_dir).load_table(cell.hash(), "rounds")
        assert a.equals(b), cell.method.display


def test_killed_worker_is_retried_and_nothing_is_lost(tmp_path):
    d = tiny_grid_dict(tmp_path / "kill", methods=[{"name": "full"}], seeds=[0, 1, 2, 3], threads_per_cell=1)
    d["fl"]["rounds"] = 6
    grid = parse_grid(d)
    killed = []

    def killer():
        import psutil

        deadline = time.time() + 120
        while time.time() < deadline and not killed:
            busy = [
                p
                for p in psutil.process_iter(["cmdline"])
                if "ray::_run_remote" in " ".join(p.info["cmdline"] or [])
            ]
            if busy:
                time.sleep(2)  # let it get into a cell
                try:
                    os.kill(busy[0].pid, signal.SIGKILL)
                    killed.append(busy[0].pid)
                except ProcessLookupError:
                    continue
            time.sleep(0.2)

    t = threading.Thread(target=killer)
    t.start()
    rep = run_sweep(grid, backend="ray", progress=False)
    t.join()
    assert killed, "no worker was killed"
    assert rep.statuses == {"ok": 4} and rep.ran == 4
    store = ResultStore(grid.output_dir)
    assert all(store.is_done(c.hash()) for c in grid.cells())
    assert len([p for p in store.runs.iterdir() if not p.name.startswith(".")]) == 4  # nothing duplicated
