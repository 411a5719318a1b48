"""Item 5 of issue 27: the grid's claims file is validated when the grid loads (``layerbench sweep``
fails at once, exit code 2, naming the key), and one strict base serves every schema."""

from __future__ import annotations

import yaml

from fl_core.cli import main
from tests.conftest import tiny_grid_dict

CLAIM = {
    "id": "x",
    "paper": "p",
    "claim": "c",
    "a": "full",
    "b": "head",
    "tests": [{"metric": "final_accuracy"}],
}


def _grid_with_claims(tmp_path, claim: dict) -> str:
    cfg = tmp_path / "g.yaml"
    cfg.write_text(yaml.safe_dump(tiny_grid_dict(tmp_path)))
    (tmp_path / "g.claims.yaml").write_text(yaml.safe_dump({"claims": [claim]}))
    return str(cfg)


def test_a_typo_in_the_claims_file_fails_the_sweep_at_load(tmp_path, capsys):
    typo = {**CLAIM, "tests": [{"metirc": "final_accuracy"}]}
    assert main(["sweep", _grid_with_claims(tmp_path, typo), "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert "g.claims.yaml" in err and "claims.0.tests.0.metirc: unknown key" in err
    assert not (tmp_path / "results").exists(), "nothing may run before the claims file is valid"


def test_a_valid_claims_file_loads_and_report_claims_flag_wins(tmp_path):
    from fl_core.config import ConfigError
    from fl_core.validate import load_grid

    cfg = _grid_with_claims(tmp_path, {**CLAIM, "cells": {"datasetz": ["bbc_news"]}})
    try:
        load_grid(cfg)
        raise AssertionError("a bad default claims file must fail the load")
    except ConfigError as err:
        assert "cells.datasetz" in str(err)
    good = tmp_path / "other.claims.yaml"
    good.write_text(yaml.safe_dump({"claims": [CLAIM]}))
    assert load_grid(cfg, claims=good).name == "t"  # `report --claims` validates that file instead


def test_one_strict_base_for_configs_params_and_claims():
    from fl_core.claims_file import Claim, ClaimsFile
    from fl_core.config import FLConfig, GridConfig, MethodSpec
    from fl_core.params import DECLARED
    from fl_core.strict import Strict

    for model in [
        FLConfig,
        GridConfig,
        MethodSpec,
        Claim,
        ClaimsFile,
        *(d.params for d in DECLARED.values()),
    ]:
        assert issubclass(model, Strict), model
        assert model.model_config["extra"] == "forbid" and model.model_config["frozen"]
