"""Validation of a grid or run config: the schema (:mod:`fl_core.config`, light), then the registry
checks (dataset, model and method names, each method's params against the model's block count),
each failure a :class:`ConfigError` naming the key. Nothing here trains or imports torch (the names
and params come from torch-free declarations), so a bad config fails at once, before any cell."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from fl_core.claims_file import default_claims_path, load_claims
from fl_core.config import (
    ConfigError,
    DataConfig,
    FLConfig,
    GridConfig,
    MethodSpec,
    RunConfig,
    allowed_keys,
    alpha_key,
    format_error,
    natural_key,
    per_partition,
    read_tuned,
)
from fl_core.dataset_names import DATASET_NAMES, SOURCE_COLUMNS, dataset_task, is_local_dataset, local_columns
from fl_core.model_specs import MODELS, max_positions, model_family, num_blocks
from fl_core.params import DECLARED, check_params


def require_mapping(raw: Any, source: str) -> dict[str, Any]:
    """``raw`` if it is a mapping, else one :class:`ConfigError` line (an empty file, a list, a scalar)."""
    if isinstance(raw, dict):
        return raw
    got = "an empty file" if raw is None else f"a YAML {type(raw).__name__}"
    raise ConfigError(
        f"invalid config {source}: (top level): expected a mapping of keys "
        f"({allowed_keys(GridConfig)}), got {got}"
    )


def parse_grid(raw: dict[str, Any], source: str = "<dict>") -> GridConfig:
    """Validate a grid dict fully: schema, registry names, method params against the model."""
    require_mapping(raw, source)
    try:
        grid = GridConfig.model_validate(raw)
    except ValidationError as err:
        msg = format_error(err, source)
        if any(e["type"] == "extra_forbidden" for e in err.errors()):
            msg += f"\n  allowed top-level keys: {allowed_keys(GridConfig)}"
            msg += f"\n  allowed fl keys: {allowed_keys(FLConfig)}\n  allowed data keys: {allowed_keys(DataConfig)}"
        raise ConfigError(msg) from None
    check_names(grid.model, grid.datasets, grid.methods, source)
    for d in grid.datasets:
        key = "partitions." + d if d in grid.partitions else "alphas"
        for a in grid.alphas_of(d):
            check_source_column(d, a, key, source)
    check_max_len(grid.model, grid.fl.max_len, source)
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


def check_source_column(dataset: str, alpha: Any, key: str, source: str) -> None:
    """A natural partition names a column the dataset has (registered: its declared source columns;
    local: the features its ``dataset_info.json`` lists, when it has one)."""
    col = natural_key(alpha)
    if col is None:
        return
    if dataset in SOURCE_COLUMNS:
        have = SOURCE_COLUMNS[dataset]
    else:
        have = local_columns(dataset)
        if have is None:
            return  # not listed on disk: the cell says so if the column is missing
    if col not in have:
        raise ConfigError(
            f"invalid config {source}: {key}: {alpha!r}: dataset '{dataset}' has no source column "
            f"'{col}'; allowed: {sorted(f'natural:{c}' for c in have) or 'none (use a Dirichlet alpha)'}"
        )


def check_max_len(model: str, max_len: int, source: str) -> None:
    """``fl.max_len`` fits the model's position embeddings (else training fails late, in a tensor op)."""
    n = max_positions(model)
    if max_len > n:
        raise ConfigError(
            f"invalid config {source}: fl.max_len: {max_len} is longer than the {n} token positions of "
            f"model '{model}'; allowed: 8..{n}"
        )


def read_yaml(path: str | Path) -> dict[str, Any]:
    """The mapping a YAML config file holds; a missing file, bad YAML, an empty file or a non-mapping
    is one :class:`ConfigError` line."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise ConfigError(f"invalid YAML in {path}: {err}") from None
    return require_mapping(raw, str(path))


def load_grid(
    path: str | Path, overrides: dict[str, Any] | None = None, claims: str | Path | None = None
) -> GridConfig:
    """The grid at ``path``, validated fully (:func:`parse_grid`: schema, registries, the tuned-lr file),
    and its claims file (``claims``, else :func:`default_claims_path`), so a typo in either fails here,
    before the sweep, naming the key."""
    raw = read_yaml(path)
    if overrides:
        raw = {**raw, **overrides}
    grid = parse_grid(raw, str(path))
    claims_path = Path(claims) if claims is not None else default_claims_path(path)
    if claims_path is not None:
        load_claims(claims_path)  # raises ConfigError naming the key
    return grid


def load_run(path: str | Path) -> RunConfig:
    """A single-cell YAML (keys of :class:`RunConfig`)."""
    raw = read_yaml(path)
    try:
        run = RunConfig.model_validate(raw)
    except ValidationError as err:
        raise ConfigError(format_error(err, str(path))) from None
    check_names(run.model, [run.dataset], [run.method], str(path))
    check_max_len(run.model, run.fl.max_len, str(path))
    return run


def load_tuned(path: str | Path, grid: GridConfig) -> dict[str, dict]:
    """The ``chosen`` mapping of a tuned file, checked against the grid: no unknown dataset, partition
    or label, every lr a number > 0, and an lr for every (dataset, partition, method without its own
    lr). Either format: dataset -> partition -> label -> lr, or the older dataset -> label -> lr."""
    chosen = read_tuned(path)["chosen"]
    labels = {m.display for m in grid.methods}
    for d, entry in chosen.items():
        if d not in grid.datasets:
            raise ConfigError(
                f"tuned file {path}: dataset '{d}' is not in the grid; allowed: {grid.datasets}"
            )
        if not per_partition(entry):
            _check_lrs(path, d, entry, labels)
            continue
        parts = [alpha_key(a) for a in grid.alphas_of(d)]
        for part, per in entry.items():
            if part not in parts:
                raise ConfigError(
                    f"tuned file {path}: {d}: unknown partition '{part}'; allowed: {parts} (the grid's "
                    "partitions of this dataset)"
                )
            if not isinstance(per, dict):
                raise ConfigError(f"tuned file {path}: {d}: '{part}' mixes the per-partition and old formats")
            _check_lrs(path, f"{d}.{part}", per, labels)
    missing = [
        f"{d}/{alpha_key(a)}/{m.display}" if per_partition(chosen.get(d)) else f"{d}/{m.display}"
        for d in grid.datasets
        for a in grid.alphas_of(d)
        for m in grid.methods
        if m.lr is None and not _has(chosen.get(d) or {}, alpha_key(a), m.display)
    ]
    missing = list(dict.fromkeys(missing))  # an old-format entry: one name per (dataset, method)
    if missing:
        raise ConfigError(f"tuned file {path}: no lr for {missing}; re-run `layerbench tune` to finish it")
    return chosen


def _has(entry: dict, part: str, label: str) -> bool:
    return label in (entry.get(part) or {}) if per_partition(entry) else label in entry


def _check_lrs(path: str | Path, where: str, per: Any, labels: set[str]) -> None:
    for lab, lr in (per or {}).items():
        if lab not in labels:
            raise ConfigError(
                f"tuned file {path}: {where}: unknown method label '{lab}'; allowed: {sorted(labels)}"
            )
        if not isinstance(lr, int | float) or isinstance(lr, bool) or not lr > 0:
            raise ConfigError(f"tuned file {path}: {where}.{lab}: lr must be a number > 0, got {lr!r}")
