"""CLI and config items of issue 14: YAML ``off``, duplicate grid entries, sweep filters, bad
``--alpha``, whole descriptions in ``list``, a corrupted cell re-run with a message, quiet bars."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from fl_core.cli import main
from fl_core.config import ConfigError
from fl_core.store import ResultStore
from fl_core.validate import load_grid
from tests.conftest import tiny_grid_dict

REPO = Path(__file__).resolve().parents[1]


def _cfg(tmp_path, text_over: str = "", **over) -> Path:
    cfg = tmp_path / "g.yaml"
    cfg.write_text(yaml.safe_dump(tiny_grid_dict(tmp_path, **over)) + text_over)
    return cfg


@pytest.mark.parametrize(("written", "mode"), [("off", "off"), ("on", "online"), ("offline", "offline")])
def test_wandb_mode_is_read_as_written_in_yaml(tmp_path, written, mode):
    cfg = tmp_path / "g.yaml"
    d = tiny_grid_dict(tmp_path)
    del d["wandb"]
    cfg.write_text(yaml.safe_dump(d) + f"wandb: {{mode: {written}}}\n")
    assert load_grid(cfg).wandb.mode == mode


@pytest.mark.parametrize(
    ("key", "value", "named"),
    [
        ("alphas", [0.1, 1.0, 0.1], "0.1"),
        ("seeds", [0, 1, 0], "0"),
        ("datasets", ["bbc_news"] * 2, "bbc_news"),
    ],
)
def test_duplicate_grid_entries_are_rejected_by_name(tmp_path, key, value, named):
    with pytest.raises(ConfigError, match=rf"{key}: .*duplicate entries \['{named}'\]"):
        load_grid(_cfg(tmp_path, **{key: value}))


def test_sweep_rejects_a_filter_no_cell_matches(tmp_path, capsys):
    assert main(["sweep", str(_cfg(tmp_path)), "--method", "nosuch"]) == 2
    err = capsys.readouterr().err
    assert "--method nosuch" in err and "full" in err and "head" in err
    assert not (tmp_path / "results" / "runs").exists()


def test_sweep_honours_filters(tmp_path, capsys):
    cfg = _cfg(tmp_path, seeds=[0, 1])
    assert main(["sweep", str(cfg), "--method", "head", "--seed", "1", "--no-progress"]) == 0
    assert "1 cells run" in capsys.readouterr().out
    grid = load_grid(cfg)
    done = [c for c in grid.cells() if ResultStore(grid.output_dir).is_done(c.hash())]
    assert [(c.method.name, c.seed) for c in done] == [("head", 1)]


def test_run_with_a_bad_alpha_is_a_clear_error(tmp_path, capsys):
    assert main(["run", str(_cfg(tmp_path)), "--alpha", "abc"]) == 2
    err = capsys.readouterr().err
    assert "--alpha 'abc'" in err and "not a number" in err and "Traceback" not in err


def test_list_prints_whole_descriptions(capsys):
    from fl_core.data import DATASETS
    from fl_core.methods import METHODS

    assert main(["list"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    for obj in [*METHODS.values(), *DATASETS.values()]:
        para = " ".join((obj.__doc__ or "").strip().split("\n\n")[0].split())
        assert para in out, para


def test_a_corrupted_cell_is_rerun_with_a_message(tmp_path, caplog):
    from fl_core.sweep import run_sweep

    grid = load_grid(_cfg(tmp_path))
    run_sweep(grid, progress=False)
    h = grid.cells()[0].hash()
    (ResultStore(grid.output_dir).path(h) / "rounds.csv").write_text("round\n99\n")
    with caplog.at_level(logging.INFO):
        rep = run_sweep(grid, progress=False)
    assert rep.ran == 1 and rep.skipped_done == 1
    assert any("corrupted" in r.message and "running it again" in r.message for r in caplog.records)


@pytest.mark.slow
def test_no_progress_silences_the_weight_loading_bar():
    """The pretrained MiniLM's weight-loading bar: gone with --no-progress (what the CLI calls)."""
    code = (
        "from fl_core.cli import quiet_progress; quiet_progress(True)\n"
        "from fl_core.models import build_model; build_model('minilm-l6', num_labels=2)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    p = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    assert "\r" not in p.stderr and "\x1b" not in p.stderr and "it/s" not in p.stderr, p.stderr


@pytest.mark.slow
def test_non_tty_sweep_log_has_no_bars(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    p = subprocess.run(
        [sys.executable, "-m", "fl_core.cli", "sweep", str(_cfg(tmp_path))],
        env=env,
        capture_output=True,
        text=True,
    )
    assert p.returncode == 0, p.stderr
    assert "\r" not in p.stderr and "\x1b" not in p.stderr and "cells run" in p.stdout
