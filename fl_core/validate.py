"""Validation of a grid or run config: the schema (:mod:`fl_core.config`, light), then the registry
checks (dataset, model and method names, each method's params against the model's block count),
each failure a :class:`ConfigError` naming the key. Nothing here trains or imports torch (the names
and params come from torch-free declarations), so a bad config fails at once, before any cell."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from fl_core.config import (
    ConfigError,
    DataConfig,
    FLConfig,
    GridConfig,
    MethodSpec,
    RunConfig,
    allowed_keys,
    format_error,
    read_tuned,
)
from fl_core.dataset_names import DATASET_NAMES, dataset_task, is_local_dataset
from fl_core.model_specs import MODELS, model_family, num_blocks
from fl_core.params import DECLARED, check_params


def parse_grid(raw: dict[str, Any], source: str = "<dict>") -> GridConfig:
    """Validate a grid dict fully: schema, registry names, method params against the model."""
    if not isinstance(raw, dict):
        raise ConfigError(f"invalid config {source}: expected a mapping of keys, got {type(raw).__name__}")
    try:
        grid = GridConfig.model_validate(raw)
    except ValidationError as err:
        msg = format_error(err, source)
        if any(e["type"] == "extra_forbidden" for e in err.errors()):
            msg += f"\n  allowed top-level keys: {allowed_keys(GridConfig)}"
            msg += f"\n  allowed fl keys: {allowed_keys(FLConfig)}\n  allowed data keys: {allowed_keys(DataConfig)}"
        raise ConfigError(msg) from None
    check_names(grid.model, grid.datasets, grid.methods, source)
    if grid.tuned:
        load_tuned(grid.tuned, grid)  # raises ConfigError naming what is wrong
    return grid


def check_names(model: str, datasets: list[str], methods: list[MethodSpec], source: str) -> None:
    """Registry checks: dataset, model and method names, and each method's params."""
    for i, d in enumerate(datasets):
        if d not in DATASET_NAMES and not is_local_dataset(d):
            raise ConfigError(
                f"invalid config {source}: datasets[{i}]: unknown dataset '{d}'; "
                f"allowed: {sorted(DATASET_NAMES)} or a local path to a saved datasets.DatasetDict"
            )
    if model not in MODELS and not (model and (Path(model) / "config.json").is_file()):
        raise ConfigError(
            f"invalid config {source}: model: unknown model '{model}'; allowed: {sorted(MODELS)} or a local HF "
            "model dir (with a config.json)"
        )
    n_blocks = num_blocks(model)
    for i, d in enumerate(datasets):
        if dataset_task(d) == "lm" and model_family(model) != "decoder":
            raise ConfigError(
                f"invalid config {source}: datasets[{i}]: '{d}' is a language-modeling task; "
                f"model '{model}' is an encoder: use a decoder (smollm2-135m, tiny-llama or a Llama-family dir)"
            )
    for i, m in enumerate(methods):
        if m.name not in DECLARED:
            raise ConfigError(
                f"invalid config {source}: methods[{i}].name: unknown method '{m.name}'; allowed: {sorted(DECLARED)}"
            )
        try:
            check_params(m.name, m.params, n_blocks)
        except (ValidationError, ValueError) as err:
            detail = format_error(err, "") if isinstance(err, ValidationError) else str(err)
            detail = detail.replace("invalid config :", "").strip()
            raise ConfigError(f"invalid config {source}: methods[{i}].params ({m.name}): {detail}") from None
    labels = [m.display for m in methods]
    dup = {x for x in labels if labels.count(x) > 1}
    if dup:
        raise ConfigError(
            f"invalid config {source}: methods: duplicate label(s) {sorted(dup)}; set a distinct 'label'"
        )


def load_grid(path: str | Path, overrides: dict[str, Any] | None = None) -> GridConfig:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise ConfigError(f"invalid YAML in {path}: {err}") from None
    if overrides:
        raw = {**raw, **overrides}
    return parse_grid(raw, str(path))


def load_run(path: str | Path) -> RunConfig:
    """A single-cell YAML (keys of :class:`RunConfig`)."""
    path = Path(path)
    raw = yaml.safe_load(path.read_text())
    try:
        run = RunConfig.model_validate(raw)
    except ValidationError as err:
        raise ConfigError(format_error(err, str(path))) from None
    check_names(run.model, [run.dataset], [run.method], str(path))
    return run


def load_tuned(path: str | Path, grid: GridConfig) -> dict[str, dict[str, float]]:
    """dataset -> label -> lr, checked against the grid: every (dataset, method without its own lr)
    has a positive lr, and no unknown dataset or label is named."""
    chosen = read_tuned(path)["chosen"]
    labels = {m.display for m in grid.methods}
    for d, per in chosen.items():
        if d not in grid.datasets:
            raise ConfigError(
                f"tuned file {path}: dataset '{d}' is not in the grid; allowed: {grid.datasets}"
            )
        for lab, lr in (per or {}).items():
            if lab not in labels:
                raise ConfigError(
                    f"tuned file {path}: {d}: unknown method label '{lab}'; allowed: {sorted(labels)}"
                )
            if not isinstance(lr, int | float) or isinstance(lr, bool) or not lr > 0:
                raise ConfigError(f"tuned file {path}: {d}.{lab}: lr must be a number > 0, got {lr!r}")
    missing = [
        f"{d}/{m.display}"
        for d in grid.datasets
        for m in grid.methods
        if m.lr is None and m.display not in (chosen.get(d) or {})
    ]
    if missing:
        raise ConfigError(f"tuned file {path}: no lr for {missing}; re-run `layerbench tune` to finish it")
    return chosen
