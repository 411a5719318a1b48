"""What one training step costs a device (peak memory, FLOPs, upload), the device budgets and the
largest configuration that fits them (``tiny``, ``lora_budget``), and a profiler that measures one
real step. (The FLOPs formulas: :mod:`fl_core.flops`; per-round cost records: :mod:`fl_core.cost_record`.)

A *configuration* is what a device trains on a BERT-style encoder with ``L`` blocks (embeddings
always frozen, the head — pooler + classifier — always trained):

- ``t``: the last ``t`` blocks + head (``t = 0``: head only); blocks ``0..L-t-1`` run under
  ``torch.no_grad`` (no activations stored, no backward through them);
- ``r``: LoRA adapters of rank ``r`` on the query/value projections of every block (peft, as
  :func:`fl_core.models.lora.add_lora` injects them) + head; backward runs through every block;
- ``blocks``: any set of trained blocks (a *window*, for successive layer training): backward
  runs down to ``min(blocks)``, the frozen blocks above it are passed through.

For a configuration, at batch ``B``, (padded) sequence length ``s``, ``N = B·s`` tokens, hidden
``d``, MLP width ``f``, ``h`` heads, ``C`` labels, fp32 (4 bytes), :func:`step_cost` gives

``peak memory = weights (all) + grads (trained) + optimizer state (trained) + stored activations``

(Pfeiffer et al. 2024, arXiv 2411.07826, "peak memory = weights + optimizer state + activations");
optimizer state is 2×4 bytes per trained parameter for AdamW (two moments), 4 for SGD with
momentum, 0 for plain SGD. FLOPs per step reuse :func:`fl_core.flops.step_flops`; upload is
4 bytes × trained parameters (what :func:`fl_core.client.run_client` sends).

Stored activations (what autograd saves for backward), in bytes, per block. These were read off
PyTorch's saved-tensor hooks on the HF BERT layer (``attn_implementation="sdpa"``, dropout > 0 as in
BERT/MiniLM) and match them to the byte on CPU (``tests/test_budget_model.py`` checks it):

- **trained block** (its weights get gradients)::

      4·N·(2f + 8d + 4) + m·N·2d + A

  4·N·(3d + f): the inputs of the linear layers (block input for Q/K/V, attention context,
  LayerNorm-1 output, GELU output); 4·N·3d: q, k, v for the attention backward; 4·N·2d: the two
  LayerNorm inputs, 4·N·4 their mean/rstd; 4·N·f: the GELU input; m·N·2d: the two hidden-dropout
  masks (``m`` bytes per element); ``A``: the attention core, see below.
- **pass-through block** (frozen weights above the lowest trained block: only what the *input*
  gradient needs; a frozen linear layer saves nothing)::

      4·N·(f + 5d + 4) + m·N·2d + A

- **LoRA block** = pass-through + the adapters' inputs: with ``lora_dropout = 0`` the block input
  once (4·N·d, shared by the adapted projections) and 4·N·r per adapter (the A output); with
  dropout > 0 each adapter saves its own dropped input and mask, (4 + m)·N·d + 4·N·r. The lowest
  LoRA block's input needs no gradient: no dropout masks are stored for it (−k·m·N·d for k
  adapters, dropout > 0), and on CPU neither is q, since the key needs no gradient (−4·N·d).
- **head**, ``cls`` pooling: 4·N·d (the pooler's input is a view of the last hidden state, which
  keeps all of it alive) + (8 + m)·B·d (pooler output, dropout mask, classifier input) + 4·B·C + 8·B
  + 4 (log-probs, labels, the loss normaliser). ``mean`` pooling (MiniLM-L6): 4·N + 4·B (the float
  token mask and the divisor) + (4 + m)·B·d (dropout mask, classifier input) + the same loss terms;
  when backward stops at the head (head only) just 4·B·d + the loss terms.

Attention core ``A`` and mask size ``m`` depend on the kernels (``backend``):

- ``"cpu"`` (eager PyTorch on CPU; exact): dropout masks are float (m = 4), and SDPA with dropout
  runs the math path, which stores the softmax output, its dropout mask and the dropped
  probabilities: A = 12·B·h·s².
- ``"cuda"`` (approximate, not yet checked against a GPU measurement): fused dropout keeps a bool
  mask (m = 1) and the memory-efficient SDPA kernel stores its output and log-sum-exp instead of the
  s² probabilities: A = 4·(N·d + B·h·s).

The analytic figure is the paper's sum, used for the budgets; it is not the exact peak
(``benchmarks/tiny_memory.py`` prints both): backward frees a block's activations as it allocates
that block's gradients, so for deep suffixes the measured peak is below the sum (MiniLM-L6, batch 16,
seq 64: 0.92× at t = 6), while head-only and LoRA steps hold short-lived temporaries of the forward
and backward passes that the sum leaves out (1.16× head-only, 1.03× LoRA). Configurations whose
sums are a few percent apart can therefore swap order when measured (there: t = 3 vs LoRA).

:mod:`fl_core.profiling` measures one real step (``measure_step``, re-exported here) and caches
measured peaks per configuration (``measured_peak``). Budget fits use the *measured* peak by default:
pass ``measure`` (a callable plan → bytes, e.g. :class:`MeasuredMemory`) to :func:`step_cost` and the
``largest_*`` fits, and ``StepCost.memory`` is the measured peak, ``StepCost.analytic_memory`` the sum
above (kept as the cross-check column); ``memory_source`` says which one a fit used.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import torch

from fl_core import llama_costs
from fl_core.errors import CellNotRunnable
from fl_core.flops import BYTES_PER_PARAM, step_flops
from fl_core.model_specs import MODELS, model_family, model_pooling
from fl_core.models.blocks import ArchInfo
from fl_core.params.tiny import LORA_COST_TARGETS, RESOURCES, Backend, Resource  # noqa: F401 (re-exported)
from fl_core.profiling import Measurement, inject_lora, measure_step, measured_peak  # noqa: F401 (re-exported)

Optimizer = Literal["adamw", "sgd"]
FP32 = 4
LORA_TARGETS = ("query", "value")


class DoesNotFit(CellNotRunnable, ValueError):
    """No configuration of the method fits the device budgets. A sweep records the cell as
    ``skipped`` with this message as the reason (it is a :class:`fl_core.errors.CellNotRunnable`)."""


# -- parameter counts -----------------------------------------------------------------------------
@dataclass(frozen=True)
class ParamCounts:
    embeddings: int
    block: int  # one block, without adapters
    head: int  # pooler (cls pooling) + classifier

    def total(self, num_blocks: int) -> int:
        return self.embeddings + num_blocks * self.block + self.head


def param_counts(arch: ArchInfo, max_positions: int = 512, type_vocab: int = 2) -> ParamCounts:
    """Parameters of a BERT encoder classifier (the defaults are those of MiniLM and tiny-bert) or a
    Llama decoder (:mod:`fl_core.llama_costs`)."""
    if arch.family == "llama":
        return ParamCounts(
            llama_costs.embedding_params(arch), llama_costs.block_params(arch), llama_costs.head_params(arch)
        )
    d, f = arch.hidden, arch.intermediate
    emb = (arch.vocab + max_positions + type_vocab) * d + 2 * d
    block = 4 * (d * d + d) + 2 * d + (d * f + f) + (f * d + d) + 2 * d  # attn, LN, MLP, LN
    pooler = d * d + d if arch.pooling == "cls" else 0
    head = pooler + (d * arch.num_labels + arch.num_labels)
    return ParamCounts(emb, block, head)


def lora_params_per_block(arch: ArchInfo, r: int, targets: Iterable[str] = LORA_TARGETS) -> int:
    """A (r×d) + B (d×r) per adapted projection (peft, ``bias="none"``)."""
    targets = tuple(targets)
    unknown = set(targets) - LORA_COST_TARGETS
    if unknown:
        raise ValueError(f"cost model knows LoRA targets {sorted(LORA_COST_TARGETS)}, got {sorted(unknown)}")
    if arch.family == "llama":  # A: r×d; B: (output width)×r, the KV width for key/value (GQA)
        _, _, q, k = llama_costs.widths(arch)
        return sum(r * (arch.hidden + (q if t == "query" else k)) for t in targets)
    return len(targets) * r * 2 * arch.hidden


# -- activations ----------------------------------------------------------------------------------
def _mask_bytes(backend: Backend) -> int:
    return FP32 if backend == "cpu" else 1


def _attention_core(arch: ArchInfo, batch: int, seq: int, backend: Backend) -> int:
    if backend == "cpu":
        return 3 * FP32 * batch * arch.heads * seq * seq
    return FP32 * (batch * seq * arch.hidden + batch * arch.heads * seq)


def trained_block_activation_bytes(arch: ArchInfo, batch: int, seq: int, backend: Backend = "cpu") -> int:
    """Bytes autograd stores for one block whose weights are trained (module docstring)."""
    if arch.family == "llama":
        return llama_costs.trained_block_bytes(arch, batch, seq)
    n, d, f = batch * seq, arch.hidden, arch.intermediate
    return (
        FP32 * n * (2 * f + 8 * d + 4)
        + _mask_bytes(backend) * n * 2 * d
        + _attention_core(arch, batch, seq, backend)
    )


def passthrough_block_activation_bytes(arch: ArchInfo, batch: int, seq: int, backend: Backend = "cpu") -> int:
    """Bytes stored for a frozen block that backward passes through (only input gradients)."""
    if arch.family == "llama":
        return llama_costs.passthrough_block_bytes(arch, batch, seq)
    n, d, f = batch * seq, arch.hidden, arch.intermediate
    return (
        FP32 * n * (f + 5 * d + 4)
        + _mask_bytes(backend) * n * 2 * d
        + _attention_core(arch, batch, seq, backend)
    )


def lora_block_activation_bytes(
    arch: ArchInfo,
    batch: int,
    seq: int,
    r: int,
    targets: Iterable[str] = LORA_TARGETS,
    lora_dropout: float = 0.0,
    backend: Backend = "cpu",
) -> int:
    """Bytes stored for a frozen block with LoRA adapters (pass-through + the adapters' inputs)."""
    n, d = batch * seq, arch.hidden
    k = len(tuple(targets))
    adapters = FP32 * n * d if lora_dropout == 0 else k * (FP32 + _mask_bytes(backend)) * n * d
    return passthrough_block_activation_bytes(arch, batch, seq, backend) + adapters + k * FP32 * n * r


def _lowest_lora_block_saving(
    arch: ArchInfo, batch: int, seq: int, k: int, lora_dropout: float, backend: Backend
) -> int:
    n, d = batch * seq, arch.hidden
    masks = k * _mask_bytes(backend) * n * d if lora_dropout > 0 else 0
    return masks + (FP32 * n * d if backend == "cpu" else 0)


def head_activation_bytes(
    arch: ArchInfo, batch: int, seq: int, backend: Backend = "cpu", body_grad: bool = True
) -> int:
    """Bytes stored for the head (pooling + classifier + loss). ``body_grad``: backward continues
    into the blocks (else the mean pooling and its dropout run outside autograd). A decoder: its head,
    plus the attention mask and rotary tables every block shares (:mod:`fl_core.llama_costs`)."""
    if arch.family == "llama":
        shared = llama_costs.shared_bytes(arch, batch, seq) if body_grad else 0
        return llama_costs.head_bytes(arch, batch, seq, body_grad) + shared
    d, loss = arch.hidden, FP32 * batch * arch.num_labels + 8 * batch + FP32
    if arch.pooling == "cls":
        return FP32 * batch * seq * d + (8 + _mask_bytes(backend)) * batch * d + loss
    if not body_grad:  # only the classifier's input
        return FP32 * batch * d + loss
    # the float token mask (kept by h * mask), the divisor, the dropout mask, the classifier's input
    return FP32 * batch * seq + FP32 * batch + (4 + _mask_bytes(backend)) * batch * d + loss


# -- one configuration ----------------------------------------------------------------------------
@dataclass(frozen=True)
class StepCost:
    """Analytic cost of one training step of one configuration (bytes, FLOPs)."""

    weights: int
    grads: int
    optimizer: int
    activations: int
    flops_fwd: float
    flops_bwd: float
    trained_params: int
    measured_memory: int | None = None  # measured peak (fl_core.profiling), if the fit measured it

    @property
    def analytic_memory(self) -> int:
        return self.weights + self.grads + self.optimizer + self.activations

    @property
    def memory(self) -> int:
        """The peak a budget fit compares: measured if known, else the analytic sum."""
        return self.analytic_memory if self.measured_memory is None else self.measured_memory

    @property
    def memory_source(self) -> str:
        return "analytic" if self.measured_memory is None else "measured"

    @property
    def flops(self) -> float:
        return self.flops_fwd + self.flops_bwd

    @property
    def upload(self) -> int:
        return BYTES_PER_PARAM * self.trained_params

    def get(self, resource: Resource) -> float:
        return float(getattr(self, resource))

    def as_dict(self) -> dict[str, float]:
        return {
            **asdict(self),
            "memory": self.memory,
            "analytic_memory": self.analytic_memory,
            "flops": self.flops,
            "upload": self.upload,
        }


def optimizer_state_bytes(trained_params: int, optimizer: Optimizer = "adamw", momentum: float = 0.0) -> int:
    if optimizer == "adamw":
        return 2 * FP32 * trained_params
    if optimizer == "sgd":
        return FP32 * trained_params if momentum > 0 else 0
    raise ValueError(f"optimizer must be 'adamw' or 'sgd', got {optimizer!r}")


@dataclass(frozen=True)
class _Trained:
    """What a configuration trains: parameters in memory and trained, stored activations (blocks
    only, no head), the lowest block backward reaches, and each block's trained share."""

    weights: int
    trained: int
    activations: int
    first: int
    share: list[float]


def _lora_trained(
    arch: ArchInfo, batch: int, seq: int, r: int, targets: Iterable[str], dropout: float, backend: Backend
) -> _Trained:
    """LoRA rank ``r`` on every block (+ head): backward runs through every block."""
    if r < 1:
        raise ValueError(f"LoRA rank must be >= 1, got {r}")
    L, pc = arch.num_blocks, param_counts(arch)
    lora = lora_params_per_block(arch, r, targets)
    act = L * lora_block_activation_bytes(arch, batch, seq, r, targets, dropout, backend)
    act -= _lowest_lora_block_saving(arch, batch, seq, len(tuple(targets)), dropout, backend)
    return _Trained(pc.total(L) + L * lora, L * lora + pc.head, act, 0, [lora / pc.block] * L)


def _chosen_blocks(num_blocks: int, t: int | None, blocks: Iterable[int] | None) -> set[int]:
    """The trained blocks: the last ``t``, else the set ``blocks`` (checked against the model)."""
    if t is not None:
        if not 0 <= t <= num_blocks:
            raise ValueError(f"t={t} but the model has {num_blocks} blocks; allowed: 0..{num_blocks}")
        return set(range(num_blocks - t, num_blocks))
    chosen = {int(b) for b in blocks}
    if not chosen <= set(range(num_blocks)):
        raise ValueError(f"blocks {sorted(chosen)} outside 0..{num_blocks - 1}")
    return chosen


def _blocks_trained(arch: ArchInfo, batch: int, seq: int, chosen: set[int], backend: Backend) -> _Trained:
    """The blocks ``chosen`` (+ head): backward runs down to the lowest, through the frozen above it."""
    L, pc = arch.num_blocks, param_counts(arch)
    first = min(chosen, default=L)
    share, act = [0.0] * L, 0
    for i in range(first, L):
        if i in chosen:
            share[i] = 1.0
            act += trained_block_activation_bytes(arch, batch, seq, backend)
        else:
            act += passthrough_block_activation_bytes(arch, batch, seq, backend)
    return _Trained(pc.total(L), len(chosen) * pc.block + pc.head, act, first, share)


def step_cost(
    arch: ArchInfo,
    batch: int,
    seq: int,
    *,
    t: int | None = None,
    r: int | None = None,
    blocks: Iterable[int] | None = None,
    optimizer: Optimizer = "adamw",
    momentum: float = 0.0,
    lora_targets: Iterable[str] = LORA_TARGETS,
    lora_dropout: float = 0.0,
    backend: Backend = "cpu",
    measure: Callable[[dict[str, Any]], int] | None = None,
) -> StepCost:
    """Cost of one step training the last ``t`` blocks + head, or LoRA rank ``r`` on every block +
    head, or the block set ``blocks`` + head (exactly one of the three). ``measure`` (plan dict →
    bytes): the measured peak of the configuration, which then decides ``memory``."""
    if sum(x is not None for x in (t, r, blocks)) != 1:
        raise ValueError("give exactly one of t (last t blocks), r (LoRA rank) or blocks")
    if r is not None:
        tr = _lora_trained(arch, batch, seq, r, lora_targets, lora_dropout, backend)
    else:
        chosen = _chosen_blocks(arch.num_blocks, t, blocks)
        tr = _blocks_trained(arch, batch, seq, chosen, backend)
    fwd, bwd = step_flops(arch, batch, seq, tr.first, tr.share)
    if measure is not None:
        measured = measure(
            {"t": t} if t is not None else {"r": r} if r is not None else {"blocks": sorted(chosen)}
        )
    return StepCost(
        weights=FP32 * tr.weights,
        grads=FP32 * tr.trained,
        optimizer=optimizer_state_bytes(tr.trained, optimizer, momentum),
        activations=head_activation_bytes(arch, batch, seq, backend, tr.first < arch.num_blocks)
        + tr.activations,
        flops_fwd=fwd,
        flops_bwd=bwd,
        trained_params=tr.trained,
        measured_memory=None if measure is None else int(measured),
    )


@dataclass(frozen=True)
class MeasuredMemory:
    """The ``measure`` of :func:`step_cost` for one model (picklable, so a method can checkpoint it):
    plan → measured peak bytes, profiled once per configuration and cached on disk
    (:func:`fl_core.profiling.measured_peak`)."""

    model_name: str
    num_labels: int
    batch: int
    seq: int
    optimizer: Optimizer = "adamw"
    momentum: float = 0.0
    lora_targets: tuple[str, ...] = LORA_TARGETS
    lora_dropout: float = 0.0
    device: str = "cpu"

    def __call__(self, plan: dict[str, Any]) -> int:
        return measured_peak(
            self.model_name, self.num_labels, self.batch, self.seq, plan, optimizer=self.optimizer,
            momentum=self.momentum, lora_dropout=self.lora_dropout, lora_targets=self.lora_targets,
            device=self.device,
        )  # fmt: skip


def full_cost(arch: ArchInfo, batch: int, seq: int, **kw) -> StepCost:
    """Full fine-tuning (every block + head): what budget fractions are fractions of."""
    return step_cost(arch, batch, seq, t=arch.num_blocks, **kw)


# -- budgets --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Budget:
    """Absolute device budget per step (memory bytes, FLOPs) and per round (upload bytes)."""

    memory: float = math.inf
    flops: float = math.inf
    upload: float = math.inf

    @staticmethod
    def fraction_of(ref: StepCost, fraction: float, constrain: Iterable[Resource] = RESOURCES) -> Budget:
        """``fraction`` of the reference cost for each constrained resource; the others unlimited."""
        constrain = set(constrain)
        return Budget(**{k: fraction * ref.get(k) if k in constrain else math.inf for k in RESOURCES})

    def fits(self, cost: StepCost) -> bool:
        return all(cost.get(k) <= getattr(self, k) * (1 + 1e-12) for k in RESOURCES)

    def violations(self, cost: StepCost) -> list[str]:
        """Human-readable list of the exceeded budgets (empty if ``cost`` fits)."""
        unit = {"memory": (1e6, "MB"), "flops": (1e9, "GFLOP"), "upload": (1e6, "MB")}
        return [
            f"{k} {cost.get(k) / unit[k][0]:.4g} {unit[k][1]} > budget {getattr(self, k) / unit[k][0]:.4g}"
            for k in RESOURCES
            if cost.get(k) > getattr(self, k) * (1 + 1e-12)
        ]


def largest_suffix(arch: ArchInfo, batch: int, seq: int, budget: Budget, **kw) -> int | None:
    """Largest ``t`` (last t blocks + head) that fits ``budget``; ``None`` if not even the head fits."""
    best = None
    for t in range(arch.num_blocks + 1):
        if budget.fits(step_cost(arch, batch, seq, t=t, **kw)):
            best = t
    return best


def largest_window(arch: ArchInfo, batch: int, seq: int, budget: Budget, **kw) -> int | None:
    """Largest window size ``w`` such that training blocks ``[s, s+w)`` + head fits ``budget`` for
    every start ``s`` (successive layer training); ``None`` if not even the head fits."""
    L, best = arch.num_blocks, None
    for w in range(L + 1):
        starts = range(L - w + 1) if w else [L]
        if all(budget.fits(step_cost(arch, batch, seq, blocks=range(s, s + w), **kw)) for s in starts):
            best = w
    return best


def largest_rank(
    arch: ArchInfo, batch: int, seq: int, budget: Budget, ranks: Iterable[int], **kw
) -> int | None:
    """Largest LoRA rank from ``ranks`` that fits ``budget``; ``None`` if none does."""
    fitting = [r for r in ranks if budget.fits(step_cost(arch, batch, seq, r=r, **kw))]
    return max(fitting, default=None)


# -- what a client of a running cell holds ------------------------------------------------------
def client_step_memory(
    model,
    names: list[str],
    first_grad: int,
    batch: int,
    seq: int,
    optimizer: Optimizer = "adamw",
    momentum: float = 0.0,
) -> int:
    """Analytic peak memory (bytes) of one training step of the live ``model`` (a
    :class:`fl_core.models.BlockModel`) training the parameters ``names``: the sum of the module
    docstring, per block from what is trained in it: a trained block, a LoRA block (rank and adapter
    count read off its ``lora_A`` weights, dropout off its modules) or a pass-through block above
    ``first_grad``. For suffixes, windows and uniform LoRA it equals :func:`step_cost`."""
    backend: Backend = "cpu" if model.device.type == "cpu" else "cuda"
    arch, L = model.arch, model.num_blocks
    trained = model.numel(names)
    chosen = set(names)
    act = head_activation_bytes(arch, batch, seq, backend, first_grad < L)
    for i in range(min(first_grad, L), L):
        block = [n for n in model.names_in(i) if n in chosen]
        lora_a = [n for n in block if "lora_A" in n]
        if any("lora_" not in n for n in block):
            act += trained_block_activation_bytes(arch, batch, seq, backend)
        elif lora_a:
            r = model.params[lora_a[0]].shape[0]
            targets = [n.split(".lora_A")[0].rsplit(".", 1)[-1] for n in lora_a]  # e.g. "query"
            p = max(
                (
                    m.p
                    for n, m in model.blocks[i].named_modules()
                    if "lora_dropout" in n and isinstance(m, torch.nn.Dropout)
                ),
                default=0.0,
            )
            act += lora_block_activation_bytes(arch, batch, seq, r, targets, p, backend)
            if i == first_grad:
                act -= _lowest_lora_block_saving(arch, batch, seq, len(targets), p, backend)
        else:
            act += passthrough_block_activation_bytes(arch, batch, seq, backend)
    weights = model.numel(list(model.params))
    return FP32 * (weights + trained) + optimizer_state_bytes(trained, optimizer, momentum) + act


def pass_memory(
    model,
    names: list[str],
    first_grad: int,
    shapes: Iterable[tuple[int, int]],
    optimizer: Optimizer | None = None,
    momentum: float = 0.0,
    per_sample: bool = False,
) -> int:
    """Analytic peak (bytes) of an extra client pass (scoring, setup) over batches of ``shapes``
    (batch, seq): :func:`client_step_memory` without optimizer state when ``optimizer`` is None (a
    gradient-only pass), plus 4 bytes per trained parameter and sample for a per-sample-gradient
    (vmap, ``per_sample``) pass. The max over the shapes."""
    kind, mom = (optimizer, momentum) if optimizer else ("sgd", 0.0)
    extra = FP32 * model.numel(names) if per_sample else 0
    return max(
        (client_step_memory(model, names, first_grad, b, s, kind, mom) + extra * b for b, s in set(shapes)),
        default=0,
    )


# -- architectures by registry name ---------------------------------------------------------------
def arch_of(name: str, num_labels: int) -> ArchInfo:
    """ArchInfo of a registered model (or a local HF dir) from its config, without loading weights."""
    entry = MODELS.get(name)
    if model_family(name) == "decoder":
        return _decoder_arch(name, num_labels)
    path = Path(entry.path() if entry else name)
    cfg = json.loads((path / "config.json").read_text())
    if entry is not None and entry.random:
        rc = {**entry.random_config(), "vocab_size": cfg["vocab_size"]}
        return ArchInfo.of_config(rc, rc["num_hidden_layers"], num_labels, model_pooling(name))
    blocks = entry.num_blocks if entry is not None and entry.num_blocks else int(cfg["num_hidden_layers"])
    return ArchInfo.of_config(cfg, blocks, num_labels, model_pooling(name))


@functools.lru_cache(maxsize=32)  # a GGUF header takes seconds to read
def _decoder_arch(name: str, num_labels: int, task: str = "classify") -> ArchInfo:
    """A decoder's ArchInfo from its config (built in code, read from the GGUF header or config.json)."""
    from transformers import AutoConfig, LlamaConfig

    from fl_core.models.registry import load_tokenizer

    entry = MODELS.get(name)
    if entry is not None and entry.random:
        cfg = LlamaConfig(vocab_size=len(load_tokenizer(name)), **entry.config)
    elif entry is not None and entry.gguf:
        cfg = AutoConfig.from_pretrained(entry.path(), gguf_file=entry.gguf)
    else:
        cfg = AutoConfig.from_pretrained(name, trust_remote_code=False)
    blocks = entry.num_blocks if entry is not None and entry.num_blocks else cfg.num_hidden_layers
    return ArchInfo.of_config(cfg, blocks, num_labels, "last", task)
