"""fl_core.provenance: the code revision a result records."""

from __future__ import annotations

import subprocess

from fl_core.provenance import git_revision as cached_revision


def git_revision(path: str) -> str:
    cached_revision.cache_clear()  # a process reads its revision once; this test changes the checkout
    return cached_revision(path)


def _git(repo, *args: str) -> str:
    cmd = ["git", "-c", "user.name=t", "-c", "user.email=t@t", *args]
    return subprocess.run(cmd, cwd=repo, check=True, capture_output=True, text=True).stdout.strip()


def test_outputs_under_results_do_not_make_the_revision_dirty(tmp_path):
    (tmp_path / "results").mkdir()
    (tmp_path / "code.py").write_text("x = 1\n")
    (tmp_path / "results" / "table.csv").write_text("a\n1\n")
    _git(tmp_path, "init", "-q")
    _git(tmp_path, "add", ".")
    _git(tmp_path, "commit", "-qm", "c")
    sha = _git(tmp_path, "rev-parse", "HEAD")
    assert git_revision(str(tmp_path)) == sha
    (tmp_path / "results" / "table.csv").write_text("a\n2\n")  # a benchmark rewrote its table
    assert git_revision(str(tmp_path)) == sha
    (tmp_path / "code.py").write_text("x = 2\n")
    assert git_revision(str(tmp_path)) == f"{sha}-dirty"
    assert (
        git_revision(str(tmp_path / "results")) == f"{sha}-dirty"
    )  # the whole checkout, from anywhere in it
