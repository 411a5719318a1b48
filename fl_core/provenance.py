"""Where a number came from: package versions and the git revision, stored with every result; the
revision of the report code, which a published report names (it changes only when that code changes)."""

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


#: the code a report's bytes depend on: its revision line changes only when one of these changes
REPORT_CODE = ("fl_core/report", "fl_core/compact.py")


def _git(args: list[str], cwd: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, capture_output=True, text=True, check=True, timeout=10
    ).stdout


@cache
def code_revision(paths: tuple[str, ...] = REPORT_CODE) -> str:
    """The last commit that changed ``paths`` (relative to the repository top), ``-dirty`` when they now
    differ from it (untracked files count); the same in every full clone. ``unknown`` outside git."""
    cwd = str(Path(__file__).resolve().parent)
    spec = [f":(top){p}" for p in paths]
    try:
        sha = _git(["log", "-1", "--format=%H", "--", *spec], cwd).strip()
        dirty = _git(["status", "--porcelain", "--", *spec], cwd).strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return (sha or "unknown") + ("-dirty" if dirty else "")


def git_ignored(path: str | Path) -> bool:
    """Whether git ignores ``path`` (an untracked file or folder a published page must not link to);
    False outside a git checkout."""
    p = Path(path).resolve()
    try:
        return subprocess.run(["git", "check-ignore", "-q", str(p)], cwd=p.parent, timeout=10).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False
