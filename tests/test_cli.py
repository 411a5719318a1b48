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
