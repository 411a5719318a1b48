"""What a method may know about its run (issue 27): a read-only view of the :class:`RunContext`.

A method (``fl_core.methods``) gets a :class:`MethodView` as ``self.ctx``, never the context itself:
the config, the shared model (adapters, personal state, gradient masks), the device, its clients'
sizes and rows, seeded RNG streams, and the forward / score / FLOP helpers. It does not see the
run's cost log (extra passes are recorded by :class:`fl_core.passes.ExtraPass`), the set of touched
parameters, the prefix cache, the raw data splits or the precision fields, and it cannot replace or
edit this round's global values.

Framework helpers that need the whole context (:class:`~fl_core.passes.ExtraPass`, the evaluators)
take the view a method hands them and unwrap it with :func:`framework_context`; methods never call it.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import numpy as np
import torch

from fl_core.config import RunConfig
from fl_core.context import RunContext
from fl_core.models import BlockModel
from fl_core.plan import TrainPlan

__all__ = ["MethodView", "framework_context"]


def _frozen(a: np.ndarray) -> np.ndarray:
    """A non-writeable view of ``a`` (same values, no copy)."""
    v = a.view()
    v.flags.writeable = False
    return v


class MethodView:
    """Read-only access to a run for a method; wraps the simulator's :class:`RunContext`."""

    __slots__ = ("_ctx",)

    def __init__(self, ctx: RunContext) -> None:
        object.__setattr__(self, "_ctx", ctx)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"MethodView is read-only (cannot set {name!r})")

    def __repr__(self) -> str:
        return f"MethodView({self._ctx.cfg.method.display!r}, seed={self._ctx.cfg.seed})"

    # -- the run ------------------------------------------------------------------------------
    @property
    def cfg(self) -> RunConfig:
        return self._ctx.cfg

    @property
    def model(self) -> BlockModel:
        return self._ctx.model

    @property
    def device(self) -> torch.device:
        return self._ctx.device

    @property
    def global_values(self) -> Mapping[str, torch.Tensor]:
        """This round's snapshot of the global values, as a read-only mapping."""
        return MappingProxyType(self._ctx.global_values)

    def rng(self, *key) -> np.random.Generator:
        return self._ctx.rng(*key)

    def torch_seed(self, *key) -> int:
        return self._ctx.torch_seed(*key)

    # -- clients and their data ---------------------------------------------------------------
    @property
    def num_clients(self) -> int:
        return len(self._ctx.clients)

    def num_samples(self, cid: int) -> int:
        return self._ctx.num_samples(cid)

    def client_rows(self, cid: int) -> np.ndarray:
        """Client ``cid``'s train row indices (non-writeable)."""
        return _frozen(self._ctx.clients[cid])

    @property
    def client_test(self) -> tuple[np.ndarray, ...]:
        """Each client's own test row indices (non-writeable); empty if there are none."""
        return tuple(_frozen(c) for c in self._ctx.client_test)

    def client_batches(
        self, cid: int, rnd: int, epoch: int = 0, batch_size: int | None = None
    ) -> list[np.ndarray]:
        return self._ctx.client_batches(cid, rnd, epoch, batch_size)

    def lengths(self, idx: np.ndarray, split: str = "train") -> np.ndarray:
        """Token lengths of rows ``idx`` of ``split`` (a copy)."""
        return getattr(self._ctx.splits, split).lengths[np.asarray(idx)]

    def labels(self, idx: np.ndarray, split: str = "train") -> np.ndarray:
        """Labels of rows ``idx`` of ``split`` (a copy)."""
        return getattr(self._ctx.splits, split).labels[np.asarray(idx)]

    # -- forward, score, cost -----------------------------------------------------------------
    def tensors(
        self, idx: np.ndarray, split: str = "train"
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return self._ctx.tensors(idx, split)

    def logits(self, idx: np.ndarray, split: str, first_grad: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self._ctx.logits(idx, split, first_grad)

    def trainable_names(self, plan: TrainPlan) -> list[str]:
        return self._ctx.trainable_names(plan)

    def first_grad(self, plan: TrainPlan) -> int:
        return self._ctx.first_grad(plan)

    def flops(
        self, idx: np.ndarray, plan: TrainPlan | None, names: list[str] | None = None
    ) -> tuple[float, float]:
        return self._ctx.flops(idx, plan, names)

    def add_lora(self, *args: Any, **kwargs: Any) -> list[str]:
        """Inject LoRA adapters into the shared model (:func:`fl_core.models.lora.add_lora`), in setup."""
        from fl_core.models.lora import add_lora  # peft: only where a method adds adapters

        return add_lora(self._ctx, *args, **kwargs)


def framework_context(ctx: RunContext | MethodView) -> RunContext:
    """The run context behind a view (or the context itself). For framework modules only
    (``fl_core.passes``, ``fl_core.evaluate*``): a method never calls this."""
    return ctx._ctx if isinstance(ctx, MethodView) else ctx
