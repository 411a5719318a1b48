"""Fixtures of the report tests.

- ``fixture_store``: the committed synthetic store (``fixtures/store``, see ``fixtures/make_store.py``);
- ``fixture_report``: the full report built once from it (session-scoped; figures take a while);
- ``smoke_grid``: a real 2-cell tiny-bert sweep (random weights), run once per session, for the
  end-to-end report and the notebooks.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest
import yaml

HERE = Path(__file__).resolve().parent
FIXTURES = HERE / "fixtures"
STORE = FIXTURES / "store"
GOLDEN = FIXTURES / "golden"
CLAIMS = FIXTURES / "claims.yaml"


def _load_maker():
    spec = importlib.util.spec_from_file_location("layerbench_make_store", FIXTURES / "make_store.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="session")
def make_store_module():
    return _load_maker()


@pytest.fixture(scope="session")
def fixture_store() -> Path:
    assert (STORE / "runs").is_dir(), "run tests/report/fixtures/make_store.py to create the fixture store"
    return STORE


@pytest.fixture(scope="session")
def fixture_results(fixture_store):
    from fl_core.report.load import load_results

    return load_results(fixture_store)


@pytest.fixture(scope="session")
def fixture_report(fixture_results, tmp_path_factory):
    from fl_core.report.build import write_report

    out = tmp_path_factory.mktemp("fixture_report")
    readme, parts = write_report(
        fixture_results, out, title="Results: fixture", header=["- synthetic fixture"], claims_path=CLAIMS
    )
    return out, readme, parts


@pytest.fixture(scope="session")
def picture_store(make_store_module, tmp_path_factory) -> Path:
    """A fresh store from the generator with every method of a reference-size grid (``METHODS`` +
    ``EXTRA_METHODS``): families, applied blocks, round-0 rows in some cells and not others."""
    m = make_store_module
    return m.make_store(tmp_path_factory.mktemp("picture_store"), m.METHODS + m.EXTRA_METHODS)


@pytest.fixture(scope="session")
def picture_report(picture_store, tmp_path_factory):
    """(output dir, README, parts, {figure stem: Figure}) of the full report on ``picture_store``."""
    from fl_core.report import style
    from fl_core.report.build import write_report
    from fl_core.report.load import load_results

    figs = {}
    style.SAVE_OBSERVERS.append(lambda fig, stem: figs.__setitem__(stem.name, fig))
    try:
        out = tmp_path_factory.mktemp("picture_report")
        readme, parts = write_report(
            load_results(picture_store), out, title="Results: pictures", header=[], claims_path=CLAIMS
        )
    finally:
        style.SAVE_OBSERVERS.pop()
    return out, readme, parts, figs


SMOKE_GRID = {
    "name": "smoke-test",
    "model": "tiny-bert",
    "datasets": ["bbc_news"],
    "alphas": [1.0],
    "seeds": [0],
    "methods": [{"name": "full"}, {"name": "top_k", "label": "top-1", "params": {"k": 1}}],
    "fl": {
        "num_clients": 4,
        "clients_per_round": 2,
        "rounds": 2,
        "local_steps": 1,
        "batch_size": 8,
        "max_len": 16,
        "eval_batch_size": 32,
    },
    "data": {"max_train_samples": 200, "max_test_samples": 50},
    "wandb": {"mode": "off"},
}


@pytest.fixture(scope="session")
def smoke_grid(tmp_path_factory):
    """(grid, config path) of a real 2-cell tiny-bert sweep that has run (RANDOM weights)."""
    from fl_core.sweep import run_sweep
    from fl_core.validate import parse_grid

    root = tmp_path_factory.mktemp("smoke")
    raw = {**SMOKE_GRID, "output_dir": str(root / "results")}
    cfg = root / "smoke-test.yaml"
    cfg.write_text(yaml.safe_dump(raw))
    # the session's tokenization cache (tests/conftest.py sets the same one per test)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LAYERBENCH_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))
        grid = parse_grid(raw, str(cfg))
        rep = run_sweep(grid, progress=False)
    assert rep.statuses == {"ok": 2}, rep.failed
    return grid, cfg


@pytest.fixture
def venv_kernel(monkeypatch, tmp_path_factory):
    """Kernels started by nbclient as ``python3`` run this interpreter (the venv's), whatever kernelspecs
    the user has: a ``python3`` spec on ``JUPYTER_PATH`` (searched first) pointing at ``sys.executable``."""
    import json
    import sys

    root = tmp_path_factory.getbasetemp() / "jupyter"
    spec = root / "kernels" / "python3"
    spec.mkdir(parents=True, exist_ok=True)
    (spec / "kernel.json").write_text(
        json.dumps(
            {
                "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                "display_name": "Python 3 (layerbench tests)",
                "language": "python",
            }
        )
    )
    monkeypatch.setenv("JUPYTER_PATH", str(root))
    monkeypatch.setenv("PATH", str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", ""))
