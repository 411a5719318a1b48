"""The method interface: one small class per method, registered by name.

Hook names follow Flower's ``Strategy`` (``configure_train`` / ``aggregate``); the simulator calls
them and nothing else, so a new method never touches the simulator. A method that overrides one
hook is a dozen lines (see ``methods/reference.py``).

The contract has three sides, one base class each: :class:`CellSettings` (declarative, read before
a model exists), :class:`ServerStrategy` (plan the round, aggregate) and :class:`ClientBehaviour`
(optional: data order, gradient masks, state kept on the client). Round ``t`` as the simulator runs it::

    plans   = method.configure_train(t, clients)           # what each client trains
    for c in clients:                                      # one shared model, no copies
        method.client_begin(t, c, plans[c])                # e.g. load personal state
        batches = method.order_batches(t, c, batches)      # e.g. a curriculum
        ... local training; method.after_backward(c, plan) after each backward ...
        kept = method.keep_local(c, plans[c])               # trained but not uploaded
        method.client_end(t, c, plans[c], update)          # e.g. keep personal state
    new = method.aggregate(t, updates)                     # new global values (default per-block FedAvg)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np
import torch
from pydantic import BaseModel

from fl_core.aggregate import per_block_fedavg
from fl_core.context import RunContext
from fl_core.method_view import MethodView
from fl_core.params import DECLARED, NoParams
from fl_core.params.base import resolve_k
from fl_core.plan import ClientUpdate, TrainPlan

__all__ = [
    "METHODS",
    "CellSettings",
    "ClientBehaviour",
    "ClientUpdate",
    "Method",
    "ServerStrategy",
    "NoParams",
    "TrainPlan",
    "make_method",
    "register",
    "validate_params",
]


#: Stated in every run's method info (issue 12): dropout differs with the depth a method trains.
DROPOUT_NOTE = (
    "blocks below the lowest trained block run frozen in eval mode (no dropout); the trained blocks and "
    "everything above them run in train mode, so methods that train fewer, deeper blocks see less dropout"
)


class CellSettings:
    """Declarative: what a method is and how a cell runs it, read before any model exists (class
    variables and classmethods; the duplicate finder and the validator call these without torch work)."""

    name: ClassVar[str] = "base"
    Params: ClassVar[type[BaseModel]] = NoParams
    #: True if clients keep state across rounds (their memory is reported).
    personalized: ClassVar[bool] = False
    #: the report's grouping (small multiples, colour hue): "references" | "fedtlu" | "selective" |
    #: "lora" | "budget"; recorded in each cell's result info, so the report never imports methods
    family: ClassVar[str] = "other"
    #: True if the partition cannot change the run (e.g. ``centralized``: one client holds every row),
    #: so a grid runs it once per dataset and shows the other partitions as the same run
    partition_free: ClassVar[bool] = False

    @classmethod
    def check(cls, params: BaseModel, num_blocks: int) -> None:
        """Raise ``ValueError`` naming the param if it does not fit a model with ``num_blocks``: the
        method's torch-free declaration (:mod:`fl_core.params`) holds the logic."""
        DECLARED[cls.name].check(params, num_blocks)

    @classmethod
    def adjust_cell(cls, cfg: Any, num_train: int) -> Any:
        """The cell's config as this method runs it (before partitioning); default unchanged. A
        reference mode may reshape the federation (e.g. ``centralized``: one client)."""
        return cfg

    @classmethod
    def resolve(cls, params: BaseModel, cfg: Any, num_labels: int) -> tuple[str, dict[str, Any]]:
        """(method, params) this cell really runs, for finding duplicate rows of a grid before running
        them; default its own. A method whose params resolve to another's run says which (e.g. a
        budget that gives LoRA rank 32 is ``lora`` at rank 32)."""
        return cls.name, params.model_dump(mode="json")

    @classmethod
    def select_model(cls, params: BaseModel, cfg: Any, num_labels: int) -> str:
        """The model this cell builds; default the config's. A budget-aware method may pick another."""
        return cfg.model


class ServerStrategy:
    """The server side (Flower's ``Strategy``): set up, plan each round, aggregate, report."""

    ctx: MethodView

    def setup(self) -> None:
        """Once, after the model and data exist and before round 0 (may add adapters, score data)."""

    def configure_train(self, rnd: int, clients: list[int]) -> dict[int, TrainPlan]:
        """What each of this round's clients trains (blocks, head, an ``only`` filter, diagnostics)."""
        raise NotImplementedError

    def aggregate(self, rnd: int, updates: list[ClientUpdate]) -> dict[str, torch.Tensor]:
        """New global values for the parameters that change; default per-block FedAvg."""
        return per_block_fedavg(updates, self.ctx.global_values)

    def never_trained_below(self) -> int:
        """How many bottom blocks no client trains in the whole run (their output may be cached)."""
        return 0

    def run_info(self) -> dict[str, Any]:
        """Method-specific facts of the whole run (e.g. per-device depth), stored in the result;
        subclasses extend ``super().run_info()`` (it carries :data:`DROPOUT_NOTE`)."""
        return {"dropout_note": DROPOUT_NOTE}

    def round_info(self, rnd: int) -> dict[str, Any]:
        """Diagnostics of round ``rnd`` (chosen blocks, solver status...), logged with the round's
        metrics; each key declared in :mod:`fl_core.diagnostics`, values JSON-serialisable."""
        return {}


class ClientBehaviour:
    """The client side, all optional: data order, gradient masks, state kept on the client."""

    def order_batches(self, rnd: int, cid: int, batches: list[np.ndarray]) -> list[np.ndarray]:
        """Per-client data order / curriculum; default: the seeded shuffle, unchanged."""
        return batches

    def client_begin(self, rnd: int, cid: int, plan: TrainPlan) -> None:
        """Before client ``cid`` trains (the global values are already loaded)."""

    def after_backward(self, cid: int, plan: TrainPlan) -> None:
        """After each backward, before the optimizer step (e.g. mask gradients)."""

    def keep_local(self, cid: int, plan: TrainPlan) -> set[str]:
        """Trained parameters that stay on the client (not uploaded, not counted as upload)."""
        return set()

    def client_end(self, rnd: int, cid: int, plan: TrainPlan, update: ClientUpdate) -> None:
        """After client ``cid`` trained, before the global values are restored."""

    def personalized_eval(self) -> dict[str, float] | None:
        """Metrics on each client's own test split with its personal state, or None."""
        return None


class Method(CellSettings, ServerStrategy, ClientBehaviour):
    """Base class: the three sides of the contract (:class:`CellSettings`, :class:`ServerStrategy`,
    :class:`ClientBehaviour`). Subclasses set ``name`` (via :func:`register`), ``Params`` and
    ``configure_train``; extra passes over client data go through :class:`fl_core.passes.ExtraPass`.

    ``self.ctx`` is a :class:`fl_core.method_view.MethodView` (read-only: no cost log, no touched set,
    no raw splits), built by :func:`make_method`, never the simulator's :class:`RunContext`."""

    def __init__(self, params: BaseModel, ctx: MethodView) -> None:
        self.p = params
        self.ctx = ctx

    # -- checkpoint ----------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """What a checkpoint keeps: by default every attribute the method set on itself (scores,
        selections, curricula, personal state), except the view of the run, params and live modules."""
        return {
            k: v
            for k, v in vars(self).items()
            if k not in ("ctx", "p") and not isinstance(v, torch.nn.Module)
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for k, v in state.items():
            setattr(self, k, v)

    # -- helpers -------------------------------------------------------------------------------
    @property
    def num_blocks(self) -> int:
        return self.ctx.model.num_blocks

    def same_for_all(self, clients: list[int], plan: TrainPlan) -> dict[int, TrainPlan]:
        return dict.fromkeys(clients, plan)


METHODS: dict[str, type[Method]] = {}


def register(name: str) -> Callable[[type[Method]], type[Method]]:
    def deco(cls: type[Method]) -> type[Method]:
        if name in METHODS:
            raise ValueError(f"method {name!r} registered twice")
        if name not in DECLARED or DECLARED[name].params is not cls.Params:
            raise ValueError(
                f"method {name!r}: declare its Params in fl_core.params (validation reads them there)"
            )
        cls.name = name
        METHODS[name] = cls
        return cls

    return deco


def validate_params(name: str, params: dict[str, Any], num_blocks: int) -> BaseModel:
    cls = METHODS[name]
    p = cls.Params.model_validate(params)
    cls.check(p, num_blocks)
    if isinstance(getattr(p, "k", None), float):  # a share of the blocks: the count for this model
        p = p.model_copy(update={"k": resolve_k(p.k, num_blocks)})
    return p


def make_method(name: str, params: dict[str, Any] | BaseModel, ctx: RunContext | MethodView) -> Method:
    """The method ``name`` on ``ctx``; ``params``: a raw dict (validated here) or validated params.
    The method gets a read-only :class:`MethodView` of the run context, never the context itself."""
    cls = METHODS[name]
    view = ctx if isinstance(ctx, MethodView) else MethodView(ctx)
    if not isinstance(params, BaseModel):
        params = validate_params(name, params, view.model.num_blocks)
    return cls(params, view)
