"""Configs are data: pydantic schemas for one run (a *cell*) and for a grid of cells.

Schemas only: loading a YAML file and the registry checks (unknown method, dataset or model, ``k``
larger than the model's block count ...) are :mod:`fl_core.validate`. Every problem raises
:class:`ConfigError` naming the key and the allowed values, before any training starts.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import re
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)

from fl_core.errors import ConfigError  # noqa: F401  (re-exported)
from fl_core.model_specs import model_pooling
from fl_core.strict import Strict  # noqa: F401  (re-exported: the base of every schema)


class FLConfig(Strict):
    """Federated-learning settings shared by every method of a grid."""

    num_clients: int = Field(10, ge=1)
    clients_per_round: int = Field(5, ge=1)
    rounds: int = Field(10, ge=1)
    local_epochs: int = Field(1, ge=1)
    local_steps: int | None = Field(None, ge=1, description="cap on optimizer steps per client and round")
    batch_size: int = Field(16, ge=1)
    lr: float = Field(5e-4, gt=0)
    optimizer: Literal["adamw", "sgd"] = "adamw"
    weight_decay: float = Field(0.0, ge=0)
    momentum: float = Field(0.0, ge=0, lt=1)
    grad_clip: float | None = Field(1.0, gt=0)
    max_len: int = Field(64, ge=8, le=4096)
    eval_every: int = Field(1, ge=1)
    final_window: int = Field(
        1,
        ge=1,
        description="the final_* numbers are the mean of the last this many evaluations (1: the last one); "
        "smooths the swing of a model averaged over a few sampled clients",
    )
    eval_batch_size: int = Field(64, ge=1)
    train_embeddings: bool = False
    prefix_cache: bool = Field(True, description="cache the output of blocks no client ever trains")
    length_buckets: int = Field(
        8, ge=0, description="sort each run of this many shuffled batches by length before batching (0: off)"
    )
    device: str = "auto"
    precision: Literal["fp32", "bf16", "auto"] = Field(
        "fp32",
        description="bf16: autocast forward/backward; weights, optimizer, aggregation stay fp32. "
        "auto: bf16 where the hardware has native bf16, else fp32 (fl_core.precision)",
    )

    @model_validator(mode="after")
    def _clients(self) -> FLConfig:
        if self.clients_per_round > self.num_clients:
            raise ValueError(
                f"fl.clients_per_round={self.clients_per_round} is larger than fl.num_clients="
                f"{self.num_clients}; allowed: 1..{self.num_clients}"
            )
        return self


class DataConfig(Strict):
    test_fraction: float = Field(
        0.2, gt=0, lt=1, description="held-out share where the source has no test split"
    )
    split_seed: int = 0
    min_partition_size: int = Field(2, ge=0, description="smallest client; 0 allows empty clients")
    max_train_samples: int | None = Field(None, ge=1)
    max_test_samples: int | None = Field(None, ge=1)
    val_fraction: float = Field(0.0, ge=0, lt=1, description="share of train held out for model selection")
    evaluate_on: Literal["test", "val"] = Field(
        "test", description="'val': the validation rows replace the test split before training (tuning)"
    )

    @model_validator(mode="after")
    def _val(self) -> DataConfig:
        if self.evaluate_on == "val" and self.val_fraction <= 0:
            raise ValueError("data.evaluate_on='val' needs data.val_fraction > 0")
        return self


class WandbConfig(Strict):
    mode: Literal["offline", "online", "off"] = "offline"
    project: str = "layerbench"
    entity: str | None = None

    @field_validator("mode", mode="before")
    @classmethod
    def _yaml_bool(cls, v: Any) -> Any:
        # YAML 1.1 reads a bare ``off`` / ``on`` as a boolean: take them as written
        return {False: "off", True: "online"}.get(v, v) if isinstance(v, bool) else v


class RayConfig(Strict):
    """Resources per cell on the Ray backend (``--backend ray``; ``RAY_ADDRESS`` joins a cluster)."""

    cpus_per_cell: float = Field(1.0, gt=0)
    gpus_per_cell: float = Field(0.0, ge=0)
    max_retries: int = Field(2, ge=0, description="re-runs of a cell whose worker died")


class MethodSpec(Strict):
    """One method of a grid: its registered ``name``, a display ``label`` and its params."""

    name: str
    label: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    lr: float | None = Field(None, gt=0, description="this method's learning rate (overrides fl.lr)")

    @property
    def display(self) -> str:
        if self.label:
            return self.label
        if not self.params:
            return self.name
        return self.name + "(" + ",".join(f"{k}={v}" for k, v in sorted(self.params.items())) + ")"


NATURAL = "natural:"
# A partition: a Dirichlet alpha, ``iid``, or ``natural:<column>`` (each client a real source: the
# rows sharing a value of that column, e.g. ``natural:movie_name``; see ``fl_core.data.partition``).
NaturalPartition = Annotated[str, StringConstraints(pattern=r"^natural:[A-Za-z_][A-Za-z0-9_]*$")]
Alpha = float | Literal["iid"] | NaturalPartition


def alpha_key(alpha: Alpha) -> str:
    """A partition as a string key (tuned files, records): ``"1.0"``, ``"0.3"``, ``"iid"``,
    ``"natural:movie_name"``."""
    return alpha if isinstance(alpha, str) else repr(float(alpha))


def natural_key(alpha: Alpha) -> str | None:
    """The column that defines the clients of a natural partition, else None."""
    return alpha[len(NATURAL) :] if isinstance(alpha, str) and alpha.startswith(NATURAL) else None


#: a grid name is one safe path component (it names report folders and W&B groups)
SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,99}$")


def check_alpha(a: Alpha) -> Alpha:
    """``iid``, ``natural:<column>`` (the pattern is the type's) or a finite number > 0 (``.inf`` would
    be a Dirichlet with no skew at all: use iid)."""
    if not isinstance(a, str) and not (math.isfinite(a) and a > 0):
        raise ValueError(f"alpha must be a finite number > 0, 'iid' or 'natural:<column>', got {a}")
    return a


def cell_name(cell: RunConfig) -> str:
    """How a cell is named in logs and tables: ``dataset|a=alpha|label|s=seed``."""
    return f"{cell.dataset}|a={cell.alpha}|{cell.method.display}|s={cell.seed}"


class RunConfig(Strict):
    """One cell: dataset × alpha × method × seed, plus the shared settings."""

    dataset: str
    alpha: Alpha
    method: MethodSpec
    seed: int = Field(ge=0)
    model: str = "minilm-l6"
    fl: FLConfig = FLConfig()
    data: DataConfig = DataConfig()

    @field_validator("alpha")
    @classmethod
    def _alpha(cls, v: Alpha) -> Alpha:
        return check_alpha(v)

    @model_validator(mode="after")
    def _method_lr(self) -> RunConfig:
        if self.method.lr is not None and self.fl.lr != self.method.lr:  # the method's lr is the one used
            object.__setattr__(self, "fl", self.fl.model_copy(update={"lr": self.method.lr}))
        return self

    def hash(self) -> str:
        """Content hash of everything that changes the numbers (not where they are written). Keys
        added after stores were published enter it only when set, so those stores stay valid. The
        head's pooling is the model's own (:func:`model_pooling`); a mean-pooled model's cells carry
        it, so cells made before it was honoured (every model then ran ``cls``) are not taken as done."""
        d = self.model_dump(mode="json")
        for section, key, default in _LATER_KEYS:
            if d[section].get(key) == default:
                d[section].pop(key)
        if (pooling := model_pooling(self.model)) != "cls":
            d["pooling"] = pooling
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:HASH_LEN]


#: hex digits of a cell's config hash (:meth:`RunConfig.hash`), the name of its store directory
HASH_LEN = 16
_LATER_KEYS = [("method", "lr", None), ("data", "evaluate_on", "test"), ("fl", "final_window", 1)]


class GridConfig(Strict):
    """A sweep: datasets × alphas × methods × seeds."""

    name: str = "grid"
    description: str = ""
    model: str = "minilm-l6"
    datasets: list[str] = Field(min_length=1)
    alphas: list[Alpha] = Field(min_length=1)
    partitions: dict[str, list[Alpha]] = Field(
        default_factory=dict,
        description="per-dataset partitions that replace `alphas` for that dataset "
        "(e.g. a natural partition only one dataset has)",
    )
    methods: list[MethodSpec] = Field(min_length=1)
    seeds: list[int] = Field(min_length=1)
    tune_seeds: list[int] | None = Field(
        None,
        min_length=2,
        description="seeds `layerbench tune` runs (default: the first two of `seeds`); seeds outside "
        "`seeds` keep every published cell off the runs whose validation accuracy chose its lr",
    )
    fl: FLConfig = FLConfig()
    data: DataConfig = DataConfig()
    wandb: WandbConfig = WandbConfig()
    ray: RayConfig = RayConfig()
    backend: Literal["sequential", "ray"] = Field(
        "sequential",
        description="how `layerbench sweep` runs the cells unless --backend (or BACKEND) says otherwise: "
        "the way measured faster for this grid",
    )
    threads_per_cell: int | None = Field(
        None,
        ge=1,
        description="torch threads per cell (sequential default: all cores; ray: cpus_per_cell). "
        "Float results are bitwise equal across backends at equal threads per cell",
    )
    checkpoint_every: int = Field(1, ge=0, description="in-cell checkpoint every N rounds (0: never)")
    output_dir: str = "results"
    report_dir: str | None = Field(
        None, description="where the report goes; default: output_dir, or output_dir/<name> if shared"
    )
    tuned: str | None = Field(None, description="learning rates chosen by `layerbench tune` (a YAML file)")

    @field_validator("datasets", "alphas", "seeds", "tune_seeds")
    @classmethod
    def _no_duplicates(cls, v: list[Any] | None) -> list[Any] | None:
        return v if v is None else _no_duplicates(v)

    @field_validator("alphas")
    @classmethod
    def _alphas(cls, v: list[Alpha]) -> list[Alpha]:
        return [check_alpha(a) for a in v]

    @field_validator("seeds", "tune_seeds")
    @classmethod
    def _seeds(cls, v: list[int] | None) -> list[int] | None:
        if bad := [s for s in v or [] if s < 0]:
            raise ValueError(f"seeds must be >= 0 (they seed numpy's SeedSequence), got {bad}")
        return v

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not SAFE_NAME.match(v):
            raise ValueError(
                f"name {v!r} must be one safe path component: letters, digits and . _ + -, "
                "starting with a letter or digit (it names the report folder)"
            )
        return v

    @field_validator("partitions")
    @classmethod
    def _partitions(cls, v: dict[str, list[Alpha]]) -> dict[str, list[Alpha]]:
        for d, alphas in v.items():
            if not alphas:
                raise ValueError(f"partitions.{d}: empty list; give at least one partition")
            for a in alphas:
                check_alpha(a)
            _no_duplicates(alphas)
        return v

    @model_validator(mode="after")
    def _partition_datasets(self) -> GridConfig:
        extra = sorted(set(self.partitions) - set(self.datasets))
        if extra:
            raise ValueError(f"partitions: {extra} not in datasets {self.datasets}")
        return self

    def tuning_seeds(self) -> list[int]:
        """The seeds ``layerbench tune`` runs unless ``--seeds`` says otherwise."""
        return list(self.tune_seeds or self.seeds[:2])

    def alphas_of(self, dataset: str) -> list[Alpha]:
        """The partitions a dataset runs under: its own ``partitions`` entry, else ``alphas``."""
        return self.partitions.get(dataset, self.alphas)

    def all_alphas(self) -> list[Alpha]:
        """Every partition some dataset of the grid runs under, in first-seen order."""
        seen: list[Alpha] = []
        for d in self.datasets:
            seen += [a for a in self.alphas_of(d) if a not in seen]
        return seen

    def cells(self) -> list[RunConfig]:
        out = []
        pairs = [(d, a) for d in self.datasets for a in self.alphas_of(d)]
        for (d, a), m, s in itertools.product(pairs, self.methods, self.seeds):
            lr = cell_lr(self, d, a, m)
            if lr is not None:  # the method's own or tuned lr: in the spec (hash) and in fl.lr
                m = m.model_copy(update={"lr": lr})
            out.append(
                RunConfig(dataset=d, alpha=a, method=m, seed=s, model=self.model, fl=self.fl, data=self.data)
            )
        return out


def _no_duplicates(v: list[Any]) -> list[Any]:
    dup = sorted({str(x) for x in v if v.count(x) > 1})
    if dup:
        raise ValueError(f"duplicate entries {dup}: each would run the same cells twice")
    return v


def format_error(err: ValidationError, source: str) -> str:
    lines = [f"invalid config {source}:"]
    for e in err.errors():
        key = ".".join(str(p) for p in e["loc"]) or "(top level)"
        msg = e["msg"].removeprefix("Value error, ")
        if e["type"] == "extra_forbidden":
            msg = "unknown key (misspelled?)"
        elif e["type"] == "literal_error":
            msg = f"{msg}"
        lines.append(f"  - {key}: {msg}")
    return "\n".join(lines)


def allowed_keys(model: type[BaseModel]) -> str:
    return ", ".join(model.model_fields)


# -- learning rates chosen by `layerbench tune` (read here; checked against the grid in validate) ---
@lru_cache(maxsize=16)
def _read_tuned(path: str, mtime: float) -> dict:
    raw = yaml.safe_load(Path(path).read_text()) or {}
    if not isinstance(raw, dict) or not isinstance(raw.get("chosen"), dict):
        raise ConfigError(
            f"invalid tuned file {path}: expected a mapping with key 'chosen: {{dataset: {{partition: "
            "{label: lr}}}' (or the older 'chosen: {dataset: {label: lr}}')"
        )
    for d, entry in raw["chosen"].items():  # a hand-written `1.0:` key is a float: the key is a string
        if per_partition(entry):
            raw["chosen"][d] = {k if isinstance(k, str) else alpha_key(k): v for k, v in entry.items()}
    return raw


def read_tuned(path: str | Path) -> dict:
    """The file ``layerbench tune`` writes (``configs/tuned/<grid>.yaml``): ``chosen`` maps dataset ->
    partition (:func:`alpha_key`) -> method label -> lr; the older files map dataset -> label -> lr
    (one lr for every partition of the dataset)."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(
            f"tuned: file {p} not found; run `layerbench tune <config>` first, or remove the 'tuned' key"
        )
    return _read_tuned(str(p), p.stat().st_mtime)


def per_partition(entry: Any) -> bool:
    """Whether a dataset's ``chosen`` entry is per partition (values are mappings), not the old
    label -> lr mapping."""
    return isinstance(entry, dict) and any(isinstance(v, dict) for v in entry.values())


def tuned_lr(chosen: dict, dataset: str, alpha: Alpha, label: str) -> float:
    """The lr a ``chosen`` mapping (either format) gives one (dataset, partition, method label)."""
    entry = chosen[dataset]
    return float(entry[alpha_key(alpha)][label] if per_partition(entry) else entry[label])


def cell_lr(grid: GridConfig, dataset: str, alpha: Alpha, method: MethodSpec) -> float | None:
    """The lr of this cell: the method's own, else the tuned one, else None (fl.lr)."""
    if method.lr is not None:
        return method.lr
    if not grid.tuned:
        return None
    return tuned_lr(read_tuned(grid.tuned)["chosen"], dataset, alpha, method.display)
