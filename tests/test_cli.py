import yaml

from fl_core.cli import main
from tests.conftest import tiny_grid_dict


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
