"""The Makefile's bench target: Ray is installed only when BACKEND=ray asks for it (a grid's own
``backend: ray`` asks the sweep, which needs Ray only for cells left to run), and ``make ray`` installs
it (``make -n``
prints the recipe without running it; a venv path that does not exist makes every install step show)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")


def bench_recipe(tmp_path: Path, *args: str) -> str:
    out = subprocess.run(
        ["make", "-n", "bench", f"VENV={tmp_path / 'venv'}", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return out


@pytest.mark.parametrize(
    ("args", "ray", "backend_flag"),
    [
        (["CONFIG=configs/reference.yaml"], False, None),  # `backend: ray`: the sweep decides
        (["CONFIG=configs/default.yaml"], False, None),
        (["CONFIG=configs/reference.yaml", "BACKEND=sequential"], False, "--backend sequential"),
        (["CONFIG=configs/default.yaml", "BACKEND=ray"], True, "--backend ray"),
    ],
)
def test_bench_installs_ray_only_when_backend_says_ray(tmp_path, args, ray, backend_flag):
    recipe = bench_recipe(tmp_path, *args)
    config = args[0].removeprefix("CONFIG=")
    sweep = next(line for line in recipe.splitlines() if "layerbench sweep" in line)
    assert config in sweep
    assert ("[dev,ray]" in recipe) is ray, recipe
    if backend_flag:
        assert backend_flag in sweep
    else:
        assert "--backend" not in sweep  # the grid's own backend decides


def test_make_ray_installs_the_ray_extra(tmp_path):
    out = subprocess.run(
        ["make", "-n", "ray", f"VENV={tmp_path / 'venv'}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "[dev,ray]" in out
