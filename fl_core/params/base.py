"""What validation needs of a method, torch-free: its pydantic ``Params`` and its ``check`` against
the model's block count, declared by name (:func:`declare`). :mod:`fl_core.validate` reads only this,
so a bad config is rejected before torch loads; each method class in :mod:`fl_core.methods` names
the same ``Params`` (``register`` verifies it) and its ``check`` calls the declared one."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import BaseModel, Field

from fl_core.registry import Registry
from fl_core.strict import Strict

Check = Callable[[Any, int], None]


class NoParams(Strict):
    """A method without params; every method's ``Params`` is a :class:`~fl_core.strict.Strict` model."""


#: a number of blocks: an int, or a float in (0, 1) for that share of the model's blocks
BlockCount = Annotated[int | float, Field(ge=0)]


def resolve_k(k: int | float, num_blocks: int) -> int:
    """Blocks meant by ``k``: itself if whole, ``round(k·L)`` (at least 1) for a share ``0 < k < 1``,
    so one config speaks of 2 of MiniLM's 6 blocks and 10 of SmolLM2's 30 alike (``k: 0.33``)."""
    if isinstance(k, float) and 0 < k < 1:
        return max(1, round(k * num_blocks))
    if k != int(k):
        raise ValueError(f"k={k}: a whole number of blocks, or a share of them in (0, 1)")
    return int(k)


def check_k(params: BaseModel, num_blocks: int) -> None:
    """The default check: a ``k`` param (if any) fits the model's blocks."""
    k = getattr(params, "k", None)
    if k is not None and not 0 <= resolve_k(k, num_blocks) <= num_blocks:
        raise ValueError(
            f"k={k} but the model has {num_blocks} blocks; allowed: 0..{num_blocks} or a share in (0, 1)"
        )


@dataclass(frozen=True)
class Declared:
    """One method's declaration: its params model and ``check(params, num_blocks)`` (raises ValueError).
    A plugin's (entry point ``layerbench.methods``) also names its method class, ``"module:Class"``:
    imported only when methods are (:mod:`fl_core.methods`), so validation never loads torch."""

    params: type[BaseModel] = NoParams
    check: Check = check_k
    method: str = ""


#: every declared method: the built-ins (:func:`declare`), then the plugins (:mod:`fl_core.params`)
DECLARED: Registry[Declared] = Registry("method")


def declare(name: str, params: type[BaseModel] = NoParams, check: Check = check_k) -> None:
    DECLARED.add(name, Declared(params, check))


def check_params(name: str, raw: dict[str, Any], num_blocks: int) -> BaseModel:
    """Validated params of method ``name`` (raises pydantic ``ValidationError`` or ``ValueError``)."""
    decl = DECLARED[name]
    p = decl.params.model_validate(raw)
    decl.check(p, num_blocks)
    return p
