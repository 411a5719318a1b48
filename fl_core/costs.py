"""Analytic cost accounting: FLOPs of a BERT-style block, bytes on the wire, per client and round.

Forward FLOPs of one block on a batch of B sequences of (padded) length s, hidden d, MLP width f:
``2·B·s·(4d² + 2df) + 4·B·s²·d`` (projections and MLP, then QKᵀ and AV). Backward through a block
costs one forward for the input gradient (needed above the lowest trained block) plus one forward
times the trained share of the block's weights for the weight gradient.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

    from fl_core.models.blocks import ArchInfo

BYTES_PER_PARAM = 4  # float32 on the wire


def block_forward_flops(arch: ArchInfo, batch: int, seq: int) -> float:
    d, f = arch.hidden, arch.intermediate
    return 2.0 * batch * seq * (4 * d * d + 2 * d * f) + 4.0 * batch * seq * seq * d


def head_forward_flops(arch: ArchInfo, batch: int) -> float:
    return 2.0 * batch * (arch.hidden * arch.hidden + arch.hidden * arch.num_labels)


def step_flops(
    arch: ArchInfo, batch: int, seq: int, first_grad: int, trained_share: list[float]
) -> tuple[float, float]:
    """(forward, backward) FLOPs of one training step.

    ``first_grad``: lowest block that backward reaches; ``trained_share[i]``: the share of block i's
    parameters that is trained (1 for a trained block, ~0.01 for LoRA, 0 for frozen).
    """
    blk = block_forward_flops(arch, batch, seq)
    head = head_forward_flops(arch, batch)
    fwd = arch.num_blocks * blk + head
    bwd = 2 * head
    for i in range(first_grad, arch.num_blocks):
        bwd += blk * (1.0 + trained_share[i])
    return fwd, bwd


@dataclass
class CostRecord:
    round: int
    client: int
    kind: str  # "train", or an extra pass: "score", "setup", ...
    trainable_params: int = 0
    bytes_up: int = 0
    bytes_down: int = 0
    samples: int = 0
    tokens: int = 0
    padded_tokens: int = 0
    flops_fwd: float = 0.0
    flops_bwd: float = 0.0
    wall_s: float = 0.0
    peak_memory_bytes: int = (
        0  # analytic (fl_core.cost_model.client_step_memory / pass_memory), max over the pass
    )

    def add_pass(self, lengths: np.ndarray, flops_fwd: float, flops_bwd: float = 0.0) -> None:
        """Count one pass over a batch whose rows have token ``lengths`` (padded to the longest):
        the one place a pass over data is counted."""
        self.flops_fwd += flops_fwd
        self.flops_bwd += flops_bwd
        self.samples += len(lengths)
        self.tokens += int(lengths.sum())
        self.padded_tokens += len(lengths) * int(lengths.max())


@dataclass
class CostLog:
    records: list[CostRecord] = field(default_factory=list)

    def add(self, rec: CostRecord) -> CostRecord:
        self.records.append(rec)
        return rec

    def rows(self) -> list[dict]:
        return [asdict(r) for r in self.records]


class Timer:
    def __enter__(self) -> Timer:
        self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc) -> None:
        self.s = time.perf_counter() - self.t0
