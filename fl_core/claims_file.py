"""The claims file's schema (``configs/<grid>.claims.yaml``, else ``claims.yaml`` beside the grid, else
``configs/claims.yaml``), torch- and pandas-free: :func:`fl_core.validate.load_grid` checks it when the
grid loads, so a typo fails before the sweep; :mod:`fl_core.report.claims` evaluates the claims."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, ValidationError, field_validator

from fl_core.config import ConfigError, format_error
from fl_core.strict import Strict

REPO = Path(__file__).resolve().parents[1]
DEFAULT_CLAIMS = REPO / "configs" / "claims.yaml"
MIN_SEEDS = 3


class MethodRef(Strict):
    """A method of the grid: by ``label``, or by registered ``name`` plus a subset of its ``params``."""

    label: str | None = None
    name: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)

    def text(self) -> str:
        if self.label:
            return self.label
        return self.name + (
            f" ({', '.join(f'{k}={v}' for k, v in sorted(self.params.items()))})" if self.params else ""
        )


class ClaimTest(Strict):
    metric: str
    direction: Literal["greater", "less", "noninferior"] = "greater"
    margin: float = Field(
        0.0, ge=0, description="non-inferiority margin, in the metric's units (accuracy: 0..1)"
    )
    relative: bool = Field(False, description="margin is a fraction of b's mean")


class CellSpec(Strict):
    datasets: list[str] | None = None  # None: every dataset of the grid
    alphas: list[float | str] | None = None  # None: every alpha of the grid


def _ref(v: Any) -> Any:
    return {"label": v} if isinstance(v, str) else v


class Claim(Strict):
    id: str
    paper: str
    claim: str  # the paper's claim, in words
    statement: str = ""  # how we test it on our grid, in words
    a: MethodRef
    b: list[MethodRef]
    tests: list[ClaimTest] = Field(min_length=1)
    cells: CellSpec = CellSpec()

    @field_validator("a", mode="before")
    @classmethod
    def _a(cls, v):
        return _ref(v)

    @field_validator("b", mode="before")
    @classmethod
    def _b(cls, v):
        return [_ref(x) for x in (v if isinstance(v, list) else [v])]


class ClaimsFile(Strict):
    alpha: float = Field(
        0.05, gt=0, lt=1, description="significance level of the one-sided tests (Holm within a claim)"
    )
    min_seeds: int = Field(MIN_SEEDS, ge=2)
    claims: list[Claim]


def load_claims(path: str | Path) -> ClaimsFile:
    """The claims file at ``path``; a missing file, bad YAML or a schema error (an unknown key is named)
    is one :class:`ConfigError`."""
    path = Path(path)
    try:
        return ClaimsFile.model_validate(yaml.safe_load(path.read_text()))
    except FileNotFoundError:
        raise ConfigError(f"claims file not found: {path}") from None
    except yaml.YAMLError as err:
        raise ConfigError(f"invalid claims file {path}: {err}") from None
    except ValidationError as err:
        msg = format_error(err, str(path)).replace("invalid config", "invalid claims file", 1)
        raise ConfigError(msg) from None


def default_claims_path(config_path: str | Path | None) -> Path | None:
    """The claims file of the grid at ``config_path``: ``<grid>.claims.yaml``, else ``claims.yaml``
    beside it, else ``configs/claims.yaml`` (None when there is none)."""
    if config_path is not None:
        for p in (Path(config_path).with_suffix(".claims.yaml"), Path(config_path).parent / "claims.yaml"):
            if p.is_file():  # the grid's own claims file, else the one next to it
                return p
    return DEFAULT_CLAIMS if DEFAULT_CLAIMS.is_file() else None
