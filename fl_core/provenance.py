"""Where a number came from: package versions and the git revision, stored with every result."""

from __future__ import annotations

import importlib.metadata as md
import platform
import subprocess
from functools import cache
from pathlib import Path

PACKAGES = [
    "layerbench",
    "torch",
    "transformers",
    "datasets",
    "flwr-datasets",
    "peft",
    "numpy",
    "scipy",
    "scikit-learn",
    "pandas",
    "wandb",
]


@cache
def versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for p in PACKAGES:
        try:
            out[p] = md.version(p)
        except md.PackageNotFoundError:
            out[p] = "not installed"
    return out


@cache
def git_revision(path: str | None = None) -> str:
    """``<sha>``, or ``<sha>-dirty`` when tracked files outside ``results/`` differ from it (outputs a run
    writes are not code); ``unknown`` outside a git checkout."""
    cwd = path or str(Path(__file__).resolve().parent)
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, check=True, timeout=10
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no", "--", ":(top)", ":(top,exclude)results"],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
        return sha + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"
