import pytest
import yaml

from fl_core.config import ConfigError
from fl_core.validate import load_grid, parse_grid
from tests.conftest import tiny_grid_dict


def test_valid_grid_expands_to_the_product(tmp_path):
    g = parse_grid(tiny_grid_dict(tmp_path, alphas=[0.1, 1.0, "iid"], seeds=[0, 1]))
    assert len(g.cells()) == 1 * 3 * 2 * 2
    assert len({c.hash() for c in g.cells()}) == 12


@pytest.mark.parametrize(
    ("change", "must_name"),
    [
        ({"rounds_typo": 3}, "rounds_typo"),
        ({"fl": {"num_clientz": 3}}, "fl.num_clientz"),
        ({"methods": [{"name": "fulll"}]}, "fulll"),
        ({"datasets": ["imdb_nope"]}, "imdb_nope"),
        ({"alphas": [0.0]}, "alphas"),
        ({"alphas": [-1]}, "alphas"),
        ({"methods": [{"name": "top_k", "params": {"k": 7}}]}, "k=7"),
        ({"methods": [{"name": "random", "params": {"kk": 1}}]}, "kk"),
        ({"methods": [{"name": "random", "params": {"mode": "both"}}]}, "mode"),
        ({"fl": {"num_clients": 3, "clients_per_round": 5}}, "clients_per_round"),
        ({"model": "bert-huge"}, "bert-huge"),
        ({"model": ""}, "model: unknown model ''"),  # '' is the current dir, not a model
        ({"model": "tests"}, "model: unknown model 'tests'"),  # a dir without config.json
        ({"datasets": [""]}, "datasets[0]"),
        ({"fl": {"length_buckets": -1}}, "fl.length_buckets"),
        ({"methods": [{"name": "full"}, {"name": "full"}]}, "duplicate"),
    ],
)
def test_invalid_configs_name_the_key(tmp_path, change, must_name):
    with pytest.raises(ConfigError) as err:
        parse_grid(tiny_grid_dict(tmp_path, **change))
    assert must_name in str(err.value)


def test_unknown_method_lists_allowed(tmp_path):
    with pytest.raises(ConfigError, match="allowed: .*'full'"):
        parse_grid(tiny_grid_dict(tmp_path, methods=[{"name": "nope"}]))


def test_cell_hash_depends_on_what_changes_numbers(tmp_path):
    a = parse_grid(tiny_grid_dict(tmp_path)).cells()[0]
    b = parse_grid(tiny_grid_dict(tmp_path, output_dir=str(tmp_path / "elsewhere"))).cells()[0]
    c = parse_grid(tiny_grid_dict(tmp_path, seeds=[1])).cells()[0]
    assert a.hash() == b.hash() != c.hash()


@pytest.mark.parametrize("path", ["configs/default.yaml", "configs/smoke.yaml"])
def test_shipped_configs_validate(path):
    g = load_grid(path)
    assert g.cells()
    assert all(c.model == "minilm-l6" for c in g.cells())  # real pretrained weights, never random


def test_load_grid_reports_yaml_and_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_grid(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("a: [1,\n")
    with pytest.raises(ConfigError, match="invalid YAML"):
        load_grid(bad)
    ok = tmp_path / "ok.yaml"
    ok.write_text(yaml.safe_dump(tiny_grid_dict(tmp_path)))
    assert load_grid(ok).name == "t"


@pytest.mark.parametrize(
    ("change", "must_name"),
    [
        ({"fl": {"max_len": 4096}}, "fl.max_len: 4096 is longer than the 512 token positions"),
        ({"seeds": [-1]}, "seeds: seeds must be >= 0"),
        ({"tune_seeds": [7]}, "tune_seeds: List should have at least 2 items"),
        ({"tune_seeds": [7, 7]}, "tune_seeds: duplicate entries ['7']"),
        ({"tune_seeds": [7, -1]}, "tune_seeds: seeds must be >= 0"),
        ({"alphas": [float("inf")]}, "alphas: alpha must be a finite number > 0"),
        ({"alphas": [float("nan")]}, "alphas"),
        ({"name": "exp/v1"}, "name: name 'exp/v1' must be one safe path component"),
        ({"name": ".."}, "name: name '..'"),
        ({"name": ""}, "name: name ''"),
    ],
)
def test_late_failures_are_rejected_up_front(tmp_path, change, must_name):
    """Issue 25: each of these used to pass validation and fail late (or write outside the store)."""
    raw = tiny_grid_dict(tmp_path)
    if "fl" in change:
        change = {"fl": {**raw["fl"], **change["fl"]}}
    with pytest.raises(ConfigError) as err:
        parse_grid({**raw, **change})
    assert must_name in str(err.value)


def test_max_len_up_to_the_models_positions_is_fine(tmp_path):
    raw = tiny_grid_dict(tmp_path)
    assert parse_grid({**raw, "fl": {**raw["fl"], "max_len": 512}}).fl.max_len == 512


@pytest.mark.parametrize(
    ("text", "got"), [("", "an empty file"), ("- a\n- b\n", "a YAML list"), ("3\n", "int")]
)
def test_empty_or_non_mapping_yaml_is_one_line_naming_the_top_level(tmp_path, text, got):
    path = tmp_path / "g.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_grid(path, {"output_dir": str(tmp_path)})  # overrides used to meet a None / list here
    assert "(top level): expected a mapping" in str(err.value) and got in str(err.value)


def test_a_gguf_models_positions_come_from_its_entry_and_match_the_file(tmp_path):
    """SmolLM2 ships as a GGUF with no config.json: its grid validates (max_len checked against the
    stated 8192 positions, what the GGUF header says; it used to fail reading a config.json)."""
    from pathlib import Path

    from fl_core.model_specs import MODELS, gguf_context_length, max_positions

    entry = MODELS.get("smollm2-135m")
    try:
        path = Path(entry.path()) / entry.gguf
    except Exception as err:  # noqa: BLE001 — the packaged weights are an optional install
        pytest.skip(f"SmolLM2 not installed: {err}")
    assert max_positions("smollm2-135m") == gguf_context_length(str(path)) == 8192
    raw = tiny_grid_dict(tmp_path, model="smollm2-135m", datasets=["bbc_news_lm"])
    assert parse_grid({**raw, "fl": {**raw["fl"], "max_len": 64}}).fl.max_len == 64


def test_tuning_runs_the_grids_tune_seeds_else_its_first_two(tmp_path):
    """``tune_seeds`` lets a grid tune on seeds it never publishes; without it, the first two."""
    import argparse

    from fl_core.tune_cli import spec_from_args

    args = argparse.Namespace(
        seeds=None, alpha=None, lrs=None, max_extend=2, no_prune=False, center_from=None
    )
    raw = tiny_grid_dict(tmp_path, seeds=[2, 3, 4])
    assert spec_from_args(args, parse_grid(raw)).seeds == (2, 3)
    assert spec_from_args(args, parse_grid({**raw, "tune_seeds": [0, 1]})).seeds == (0, 1)
    args.seeds = "5,6"
    assert spec_from_args(args, parse_grid({**raw, "tune_seeds": [0, 1]})).seeds == (5, 6)
