"""The vocabulary every layer shares: what a client trains (:class:`TrainPlan`) and what it sends
back (:class:`ClientUpdate`). Imports nothing from the package; everything else may import it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class TrainPlan:
    """What one client trains in one round.

    ``blocks``: selected block indices; ``head``: train the head; ``only``: if set, only parameters
    whose name contains it are trained inside the selected blocks (e.g. ``"lora_"``). A plan with
    ``info["sit_out"]`` set means the client does not take part this round (it fits no budget).
    """

    blocks: frozenset[int]
    head: bool = True
    only: str | None = None
    info: dict[str, Any] = field(default_factory=dict, compare=False)

    @staticmethod
    def of(blocks, head: bool = True, only: str | None = None, **info: Any) -> TrainPlan:
        return TrainPlan(frozenset(int(b) for b in blocks), head, only, info)


@dataclass
class ClientUpdate:
    """What a client sends back: the change of what it uploads (``delta``; the client's cost record
    counts exactly these bytes), its sample count and mean training loss. A method that keeps part
    of the trained parameters on the client says so before the upload (``Method.keep_local``)."""

    cid: int
    num_samples: int
    plan: TrainPlan
    delta: dict[str, torch.Tensor]
    train_loss: float
    extra: dict[str, Any] = field(default_factory=dict)
    num_batches: int = 0  # batches the client ran this round
