"""FedAvg over LoRA adapters (spec: baselines.md, project specs): Hu et al. 2022 adapters on the
attention query/value projections of every block, injected with ``peft``; clients train the adapters
and the head, and only those travel (the frozen base weights never change).

:func:`add_lora` (in :mod:`fl_core.models.lora`, re-exported here) is the reusable injection: other
methods (FibecFed, budget-aware schemes) call it in their ``setup`` and get the adapter parameter
names back; :func:`lora_pairs` lists the (A, B) pairs per adapted projection. Adapter dropout
defaults to the shared ``LORA_DROPOUT`` (0.05), the same as ``fibecfed`` and ``lora_budget``.
"""

from __future__ import annotations

from fl_core.methods.base import Method, TrainPlan, register
from fl_core.models.lora import ADAPTER, LORA_TAG, LoraPair, add_lora, lora_pairs
from fl_core.params.lora import LORA_DROPOUT, LoraParams

__all__ = ["ADAPTER", "LORA_DROPOUT", "LORA_TAG", "Lora", "LoraPair", "LoraParams", "add_lora", "lora_pairs"]


@register("lora")
class Lora(Method):
    """FedAvg-LoRA: every client trains the adapters of every block + head; sample-weighted FedAvg of
    exactly those tensors (the default per-block FedAvg over the plan's names)."""

    family = "lora"

    Params = LoraParams

    def setup(self) -> None:
        p = self.p
        self.adapter_names = self.ctx.add_lora(p.lora_r, p.lora_alpha, p.lora_dropout, p.target_modules)

    def configure_train(self, rnd, clients):
        return self.same_for_all(clients, TrainPlan.of(range(self.num_blocks), only=LORA_TAG))
