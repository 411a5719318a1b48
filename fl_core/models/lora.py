"""LoRA adapters on a BlockModel (Hu et al. 2022) via ``peft``: injection, and the (A, B) pairs.

Low-level on purpose (no method registry): :mod:`fl_core.methods.lora`, FibecFed and the cost model's
profiler all inject adapters through :func:`add_lora`. ``LORA_DROPOUT`` is the one default adapter
dropout of every LoRA method (``lora``, ``lora_budget``, ``fibecfed``), so they differ only in what
they train, not in their regularisation; it is FibecFed's spec value (0.05, peft's usual).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from peft import LoraConfig, inject_adapter_in_model

from fl_core.params.lora import LORA_DROPOUT  # noqa: F401  (re-exported; torch-free home)

if TYPE_CHECKING:
    from fl_core.models.blocks import BlockModel

LORA_TAG = "lora_"  # substring of every adapter parameter name (peft's lora_A / lora_B)
ADAPTER = "default"


def add_lora(
    ctx: Any,
    r: int = 8,
    alpha: float = 16,
    dropout: float = 0.0,
    targets: list[str] | tuple[str, ...] = ("query", "value"),
    blocks: list[int] | None = None,
    **lora_kwargs: Any,
) -> list[str]:
    """Inject LoRA adapters into the shared model (in place) and return the adapter parameter names.

    ``ctx``: a :class:`fl_core.context.RunContext` (or anything with its ``model``, ``device``,
    ``torch_seed``, ``global_values`` and ``touched``).

    ``targets``: module names to adapt (peft ``target_modules``); ``blocks``: restrict to these
    block indices (peft ``layers_to_transform``; default every block); further keyword arguments go
    to :class:`peft.LoraConfig` (e.g. ``rank_pattern``). A is initialised by peft (Kaiming-uniform)
    from a torch seed derived from the cell seed, B is zero, so the model's function is unchanged.
    Parameter names are peft's and stable across runs: the adapted ``...query.weight`` becomes
    ``...query.base_layer.weight`` and the adapter adds ``...query.lora_A.default.weight`` /
    ``...query.lora_B.default.weight``.
    """
    model = ctx.model
    if any(LORA_TAG in n for n in model.params):
        raise RuntimeError("the model already has LoRA adapters; add_lora must be called once per cell")
    cfg = LoraConfig(
        r=r,
        lora_alpha=alpha,
        lora_dropout=dropout,
        target_modules=[model.lora_alias.get(t, t) for t in targets],  # query → q_proj on a decoder
        bias="none",
        layers_to_transform=None if blocks is None else sorted(int(b) for b in blocks),
        **lora_kwargs,
    )
    state = torch.random.get_rng_state()
    torch.manual_seed(ctx.torch_seed("lora-init"))
    try:
        inject_adapter_in_model(cfg, model.hf, adapter_name=ADAPTER)
    finally:
        torch.random.set_rng_state(state)
    model.refresh()
    if ctx.global_values or not ctx.touched <= set(model.params):
        raise RuntimeError("add_lora renames the adapted weights: call it in setup, before any round")
    model.set_trainable(set())  # peft marks the adapters trainable; the plan decides what trains
    model.to(ctx.device)
    return [n for n in model.params if LORA_TAG in n]


@dataclass(frozen=True)
class LoraPair:
    """One adapted projection: its module path, block index, A/B parameter names and scaling."""

    module: str
    block: int
    a: str
    b: str
    scaling: float

    def delta_weight(self, model: BlockModel) -> torch.Tensor:
        """ΔW = B·A·scaling, shape [out_features, in_features]."""
        return (model.params[self.b] @ model.params[self.a]) * self.scaling


def lora_pairs(model: BlockModel) -> list[LoraPair]:
    """Every (A, B) adapter pair in the model, in parameter order."""
    out = []
    for n in model.params:
        if f".lora_A.{ADAPTER}." not in n:
            continue
        module = n.split(".lora_A.")[0]
        b = n.replace(".lora_A.", ".lora_B.")
        scaling = float(model.hf.get_submodule(module).scaling[ADAPTER])
        out.append(LoraPair(module, int(model.group_of[n]), n, b, scaling))
    return out
