import subprocess
import sys
from pathlib import Path

import yaml

from fl_core.cli import main
from tests.conftest import tiny_grid_dict

ROOT = Path(__file__).resolve().parents[1]


def test_list_shows_registries(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for name in ["full", "random", "bbc_news", "rotten_tomatoes", "minilm-l6", "RANDOM WEIGHTS"]:
        assert name in out


def test_list_shows_each_methods_params_with_defaults_aligned(capsys):
    from fl_core.params import DECLARED

    assert main(["list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "params: k=2, mode=client (client|server), client_training=all (all|selected)" in "\n".join(lines)
    named = {ln.split()[0]: ln for ln in lines if ln.startswith("  ") and not ln.startswith("   ")}
    assert set(DECLARED) | {"bbc_news", "rotten_tomatoes", "minilm-l6"} <= set(named)
    # one column: every description starts at the same place, the longest name included
    starts = {len(ln) - len(ln[2:].split(" ", 1)[1].lstrip()) for ln in named.values()}
    assert len(starts) == 1, starts
    assert all(named[m].split(None, 1)[1].strip() for m in DECLARED), "a method without its docstring"


def test_list_imports_no_torch():
    """`layerbench list` stays a fraction of a second: no torch, and no pandas / scipy (the report's)."""
    heavy = ("torch", "transformers", "datasets", "peft", "pandas", "scipy")
    code = (
        "import sys; from fl_core.cli import main; main(['list']); "
        f"print(sorted(m for m in {heavy!r} if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.splitlines()[-1] == "[]"


def test_bad_config_is_a_clear_error_not_a_traceback(tmp_path, capsys):
    cfg = tmp_path / "g.yaml"
    cfg.write_text(yaml.safe_dump(tiny_grid_dict(tmp_path, methods=[{"name": "fedavg_typo"}])))
    assert main(["sweep", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert "methods[0].name" in err and "fedavg_typo" in err


def test_run_one_cell_and_write_summary(tmp_path, capsys):
    cfg = tmp_path / "g.yaml"
    cfg.write_text(yaml.safe_dump(tiny_grid_dict(tmp_path)))
    assert main(["run", str(cfg), "--method", "head", "--no-progress"]) == 0
    md = (tmp_path / "results" / "summary_t.md").read_text()
    assert "| head |" in md and "missing" in md  # the cell not run is shown, not hidden


def test_building_the_parser_loads_no_optuna():
    """Optuna loads only on the ``tune`` path (a fresh interpreter: other tests may have loaded it)."""
    code = "import sys; from fl_core.cli import build_parser; build_parser(); print('optuna' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    ).stdout
    assert out.strip() == "False"


def test_tune_help_shows_the_default_lr_grid():
    from fl_core.tune import DEFAULT_LRS
    from fl_core.tune_cli import DEFAULT_LRS_HELP

    assert ",".join(f"{x:g}" for x in DEFAULT_LRS) == DEFAULT_LRS_HELP


def _capture_backend(monkeypatch) -> list[str]:
    """Stand in for run_sweep: record the backend the CLI chose, run nothing."""
    import fl_core.sweep

    seen: list[str] = []

    def fake(grid, backend="sequential", **kw):
        seen.append(backend)
        return fl_core.sweep.SweepReport(total=0, skipped_done=0)

    monkeypatch.setattr(fl_core.sweep, "run_sweep", fake)
    monkeypatch.setattr("fl_core.cli._report_after_sweep", lambda *a, **k: "-")
    monkeypatch.delenv("BACKEND", raising=False)
    return seen


def test_sweep_runs_on_the_grids_backend_unless_told_otherwise(tmp_path, monkeypatch):
    seen = _capture_backend(monkeypatch)
    monkeypatch.setattr("fl_core.ray_backend.ray_installed", lambda: True)
    cfg = tmp_path / "g.yaml"
    for grid_backend, flag, expected in [
        (None, [], "sequential"),
        ("ray", [], "ray"),
        ("ray", ["--backend", "sequential"], "sequential"),
    ]:
        d = tiny_grid_dict(tmp_path) | ({"backend": grid_backend} if grid_backend else {})
        cfg.write_text(yaml.safe_dump(d))
        assert main(["sweep", str(cfg), "--no-progress", *flag]) == 0
        assert seen.pop() == expected


def test_a_ray_grid_without_ray_installed_is_one_clear_line(tmp_path, monkeypatch, capsys):
    """Cells left to run on Ray without Ray: rc 2 and one line with both ways out, before any cell runs."""
    import fl_core.sweep

    def boom(*a, **k):
        raise AssertionError("a cell ran")

    monkeypatch.setattr("fl_core.ray_backend.ray_installed", lambda: False)
    monkeypatch.setattr(fl_core.sweep, "run_cells_ray", boom)
    monkeypatch.setattr(fl_core.sweep, "execute_cell", boom)
    monkeypatch.delenv("BACKEND", raising=False)
    cfg = tmp_path / "g.yaml"
    cfg.write_text(yaml.safe_dump(tiny_grid_dict(tmp_path) | {"backend": "ray"}))
    assert main(["sweep", str(cfg), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "backend: ray" in err and "--backend sequential" in err, err
    assert "make ray" in err and "2 cells" in err


def test_every_sweep_and_run_argument_has_help():
    from fl_core.cli import build_parser

    sub = next(a for a in build_parser()._actions if a.dest == "command")
    for name in ("sweep", "run"):
        missing = [a.dest for a in sub.choices[name]._actions if not a.help]
        assert missing == [], f"{name}: no help for {missing}"
