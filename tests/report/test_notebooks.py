"""The notebooks are stored without outputs and run top to bottom against a real (tiny) results store."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
NAMES = ["explore_results.ipynb", "inspect_partition.ipynb", "add_a_method.ipynb"]


@pytest.mark.parametrize("name", NAMES)
def test_notebook_is_v4_and_stripped(name):
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    nbformat.validate(nb)
    assert nb.nbformat == 4
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, f"{name}: outputs not stripped"


def _run(name: str) -> nbformat.NotebookNode:
    from nbclient import NotebookClient

    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    NotebookClient(
        nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOKS)}}
    ).execute()
    return nb


def _text(nb) -> str:
    out = []
    for c in nb.cells:
        for o in c.get("outputs", []):
            out.append(o.get("text", "") or str(o.get("data", {}).get("text/plain", "")))
    return "\n".join(out)


@pytest.mark.parametrize("name", ["explore_results.ipynb", "inspect_partition.ipynb"])
def test_notebook_runs_on_a_store(name, smoke_grid, monkeypatch, venv_kernel, tmp_path):
    grid, _ = smoke_grid
    monkeypatch.setenv("LAYERBENCH_RESULTS", str(grid.output_dir))
    monkeypatch.delenv("MPLBACKEND", raising=False)  # the kernel draws inline
    nb = _run(name)
    text = _text(nb)
    assert "2 cells in" in text or "config_hash" in text
    if name == "explore_results.ipynb":
        assert (
            "full − top-1 on bbc_news, alpha 1.0" in text
            and "verdict: inconclusive: too few seeds (n=1)" in text
        )
    else:
        assert "4 clients, 200 training samples" in text
    assert any(
        o.get("output_type") == "display_data" and "image/png" in o.get("data", {})
        for c in nb.cells
        for o in c.get("outputs", [])
    ), "no figure was drawn"


@pytest.mark.parametrize("name", ["explore_results.ipynb", "inspect_partition.ipynb"])
def test_notebook_runs_on_a_compact_copy_alone(name, smoke_grid, monkeypatch, venv_kernel, tmp_path):
    """What a fresh clone has: a published grid's runs.csv.gz and no raw runs."""
    from fl_core.compact import COMPACT, write_compact

    grid, _ = smoke_grid
    published = tmp_path / "published"
    assert write_compact(grid.output_dir, [c.hash() for c in grid.cells()], published / COMPACT) == 2
    monkeypatch.setenv("LAYERBENCH_RESULTS", str(published))
    monkeypatch.delenv("MPLBACKEND", raising=False)
    text = _text(_run(name))
    assert "2 cells in" in text or "config_hash" in text
    if name == "inspect_partition.ipynb":
        assert "4 clients, 200 training samples" in text


COMMITTED = NOTEBOOKS.parent / "results" / "reference_v1" / "runs.csv.gz"


@pytest.mark.parametrize("name", ["explore_results.ipynb", "inspect_partition.ipynb"])
def test_notebook_opens_the_published_grid_and_the_quick_look_is_one_variable_away(name):
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    src = nb.cells[1].source
    assert 'PUBLISHED = "../results/reference_v1"' in src and 'QUICK_LOOK = "../results/default"' in src
    assert 'os.environ.get("LAYERBENCH_RESULTS", PUBLISHED)' in src


@pytest.mark.slow
@pytest.mark.parametrize("name", ["explore_results.ipynb", "inspect_partition.ipynb"])
def test_notebook_runs_on_the_committed_published_results(name, monkeypatch, venv_kernel):
    """The notebooks as a new user opens them: ../results, the published grid's committed compact copy."""
    if not COMMITTED.is_file():
        pytest.skip(
            "results/reference_v1/runs.csv.gz is not committed (make bench CONFIG=configs/reference_v1.yaml)"
        )
    monkeypatch.delenv("LAYERBENCH_RESULTS", raising=False)
    monkeypatch.delenv("MPLBACKEND", raising=False)
    text = _text(_run(name))
    assert "cells in ../results/reference_v1:" in text or "config_hash" in text


def test_add_a_method_notebook_registers_and_runs_a_method(
    monkeypatch, venv_kernel, tmp_path, tmp_path_factory
):
    monkeypatch.setenv("LAYERBENCH_SCRATCH", str(tmp_path))
    monkeypatch.setenv("LAYERBENCH_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))
    nb = _run("add_a_method.ipynb")
    assert "statuses={'ok': 1}" in _text(nb)
    assert list((tmp_path / "results" / "runs").glob("*/MANIFEST.json"))
