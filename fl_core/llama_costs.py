"""Analytic FLOPs, parameters and stored activations of a Llama-family decoder block (GQA, SwiGLU,
RMSNorm, rotary positions) and its head (last-token classifier or LM head, tied or not). Torch-free;
:mod:`fl_core.flops` and :mod:`fl_core.budget_model` call these for ``arch.family == "llama"``.

Notation: batch ``B``, (padded) length ``s``, ``N = B·s`` tokens, hidden ``d``, MLP width ``f``,
``h`` query heads and ``g`` key/value heads of width ``e`` (``q = h·e``, ``k = g·e``), vocabulary ``V``.

**FLOPs** (matmuls only, as ``torch.utils.flop_counter`` counts them) of one block's forward:
``2·N·(2·d·q + 2·d·k + 3·d·f) + 4·B·s²·q`` (q/o and k/v projections, gate/up/down, QKᵀ and AV over
all ``h`` heads, the KV heads repeated). Head: ``2·B·d·C`` (classifier on the last token) or
``2·N·d·V`` (LM head on every position).

**Stored activations** (fp32, eager CPU attention, no dropout; what autograd saves, read off the HF
``LlamaDecoderLayer``'s saved tensors): a trained block saves both RMSNorms' input, normalised input
and output (3·N·d + N each), the rotated q and repeated k, v and the attention output (4·N·q), the
``o_proj`` input (N·q), the attention log-sum-exp (B·h·s) and the SwiGLU gate, its SiLU, up and
product (4·N·f). A pass-through block (frozen weights above the lowest trained one) keeps only what
input gradients need: each norm's input and rstd (N·d + N), q/k/v/output (4·N·q), the log-sum-exp
and the SiLU, gate and up (3·N·f). The float attention mask (B·s²) and rotary cos/sin (2·B·s·e) are
built once per step and shared by every block.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fl_core.models.blocks import ArchInfo

FP32 = 4


def widths(arch: ArchInfo) -> tuple[int, int, int, int]:
    """(d, f, q, k): hidden, MLP width, query width h·e and key/value width g·e."""
    e = arch.head_dim or arch.hidden // arch.heads
    return arch.hidden, arch.intermediate, arch.heads * e, (arch.kv_heads or arch.heads) * e


def block_forward_flops(arch: ArchInfo, batch: int, seq: int) -> float:
    d, f, q, k = widths(arch)
    return 2.0 * batch * seq * (2 * d * q + 2 * d * k + 3 * d * f) + 4.0 * batch * seq * seq * q


def head_forward_flops(arch: ArchInfo, batch: int, seq: int) -> float:
    if arch.task == "lm":
        return 2.0 * batch * seq * arch.hidden * arch.vocab
    return 2.0 * batch * arch.hidden * arch.num_labels


def head_weight_trained(arch: ArchInfo) -> bool:
    """Does the head's big matrix get a gradient? Not a tied LM head (it is the frozen embedding)."""
    return not (arch.task == "lm" and arch.tied)


def block_params(arch: ArchInfo) -> int:
    d, f, q, k = widths(arch)
    return 2 * d * q + 2 * d * k + 3 * d * f + 2 * d


def embedding_params(arch: ArchInfo) -> int:
    return arch.vocab * arch.hidden


def head_params(arch: ArchInfo) -> int:
    """Final norm + classifier (with bias), or + an untied LM head."""
    d = arch.hidden
    if arch.task == "lm":
        return d + (0 if arch.tied else arch.vocab * d)
    return d + d * arch.num_labels + arch.num_labels


def trained_block_bytes(arch: ArchInfo, batch: int, seq: int) -> int:
    d, f, q, _ = widths(arch)
    n = batch * seq
    return FP32 * (2 * (3 * n * d + n) + 5 * n * q + 4 * n * f + batch * arch.heads * seq)


def passthrough_block_bytes(arch: ArchInfo, batch: int, seq: int) -> int:
    d, f, q, _ = widths(arch)
    n = batch * seq
    return FP32 * (2 * (n * d + n) + 4 * n * q + 3 * n * f + batch * arch.heads * seq)


def shared_bytes(arch: ArchInfo, batch: int, seq: int) -> int:
    """The float attention mask and rotary cos/sin, once per step when backward enters a block."""
    _, _, q, _ = widths(arch)
    return FP32 * (batch * seq * seq + 2 * batch * seq * (q // arch.heads))


def head_bytes(arch: ArchInfo, batch: int, seq: int, body_grad: bool = True) -> int:
    """The head: final norm (3·n·d + n), the classifier's or LM head's input (n·d, when its weight
    trains), logits and log-probs (2·n·C) and the targets; ``n`` = B (classify) or N (LM)."""
    n = batch * seq if arch.task == "lm" else batch
    c = arch.vocab if arch.task == "lm" else arch.num_labels
    d = arch.hidden
    inp = n * d if head_weight_trained(arch) else 0
    return FP32 * (3 * n * d + n + inp + 2 * n * c) + 8 * n + FP32
