"""A fresh clone's `make bench CONFIG=configs/reference_v1.yaml` restores the published grid, trains
nothing, needs no Ray and leaves `git status` clean (slow: it rebuilds the whole reference report)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
VENV = Path(sys.prefix)  # this interpreter's venv, reused (its install stamp is not remade: `make -o`)


@pytest.mark.slow
def test_fresh_clone_make_bench_of_the_published_grid_leaves_git_clean(tmp_path):
    if not (REPO / ".git").exists() or shutil.which("make") is None or shutil.which("git") is None:
        pytest.skip("needs a git checkout, git and make")
    if not (VENV / "bin" / "layerbench").is_file():
        pytest.skip("needs a venv with the layerbench script")
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(REPO), str(clone)], check=True)
    no_ray = tmp_path / "no_ray"  # Ray as if not installed: any import of it fails, find_spec sees none
    no_ray.mkdir()
    (no_ray / "sitecustomize.py").write_text("import sys\n\nsys.modules['ray'] = None\n")
    env = {k: v for k, v in os.environ.items() if k not in ("BACKEND", "PYTHONPATH")}
    env |= {
        "PYTHONPATH": f"{no_ray}{os.pathsep}{clone}",  # the clone's fl_core, not the venv's editable one
        "LAYERBENCH_CACHE": str(tmp_path / "cache"),
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
    }
    which = [
        str(VENV / "bin" / "python"),
        "-c",
        "import fl_core, importlib.util as u; print(fl_core.__file__, u.find_spec('ray'))",
    ]
    assert subprocess.run(which, cwd=clone, env=env, capture_output=True, text=True).stdout.split() == [
        str(clone / "fl_core" / "__init__.py"),
        "None",
    ]
    stamp = VENV / ".installed"
    p = subprocess.run(
        ["make", "-o", str(stamp), "bench", "CONFIG=configs/reference_v1.yaml", f"VENV={VENV}"],
        cwd=clone,
        env=env,
        capture_output=True,
        text=True,
    )
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    assert "0 cells run" in p.stdout and "[dev,ray]" not in p.stdout, p.stdout[-3000:]
    status = subprocess.run(
        ["git", "status", "--porcelain"], cwd=clone, capture_output=True, text=True, check=True
    )
    assert status.stdout == "", status.stdout
