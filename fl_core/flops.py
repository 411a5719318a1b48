"""Analytic FLOPs of a BERT-style block, the head and one training step, and bytes per parameter on
the wire. (What a step costs a device in memory, and the budget fits: :mod:`fl_core.budget_model`;
the per-client, per-round records these numbers go into: :mod:`fl_core.cost_record`.)

Forward FLOPs of one BERT block (a Llama block: :mod:`fl_core.llama_costs`) on a batch of B sequences of (padded) length s, hidden d, MLP width f:
``2·B·s·(4d² + 2df) + 4·B·s²·d`` (projections and MLP, then QKᵀ and AV). Backward through a block
costs one forward for the input gradient (needed above the lowest trained block) plus one forward
times the trained share of the block's weights for the weight gradient.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fl_core import llama_costs

if TYPE_CHECKING:
    from fl_core.models.blocks import ArchInfo

BYTES_PER_PARAM = 4  # float32 on the wire


def block_forward_flops(arch: ArchInfo, batch: int, seq: int) -> float:
    if arch.family == "llama":
        return llama_costs.block_forward_flops(arch, batch, seq)
    d, f = arch.hidden, arch.intermediate
    return 2.0 * batch * seq * (4 * d * d + 2 * d * f) + 4.0 * batch * seq * seq * d


def head_forward_flops(arch: ArchInfo, batch: int, seq: int = 1) -> float:
    """The classifier, and the pooler's dense layer under ``cls`` pooling (a mean pools without matmul);
    a decoder's LM head runs on every one of the ``seq`` positions."""
    if arch.family == "llama":
        return llama_costs.head_forward_flops(arch, batch, seq)
    pooler = arch.hidden * arch.hidden if arch.pooling == "cls" else 0
    return 2.0 * batch * (pooler + arch.hidden * arch.num_labels)


def step_flops(
    arch: ArchInfo, batch: int, seq: int, first_grad: int, trained_share: list[float]
) -> tuple[float, float]:
    """(forward, backward) FLOPs of one training step.

    ``first_grad``: lowest block that backward reaches; ``trained_share[i]``: the share of block i's
    parameters that is trained (1 for a trained block, ~0.01 for LoRA, 0 for frozen).
    """
    blk = block_forward_flops(arch, batch, seq)
    head = head_forward_flops(arch, batch, seq)
    fwd = arch.num_blocks * blk + head
    bwd = head * (2 if llama_costs.head_weight_trained(arch) else 1)  # a tied LM head: input grad only
    for i in range(first_grad, arch.num_blocks):
        bwd += blk * (1.0 + trained_share[i])
    return fwd, bwd
