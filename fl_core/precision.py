"""Training/evaluation precision (``fl.precision``): ``fp32``, or ``bf16`` = ``torch.autocast`` with
bfloat16 around forward and backward (Micikevicius et al. 2018, mixed precision; bf16 needs no loss
scaling). Parameters, gradients, optimizer state and aggregation stay float32: autocast only casts
the inputs of matmul-like ops, so the master weights the optimizer steps are never rounded.

``auto`` runs bf16 only where the hardware has it natively (:func:`bf16_native`: a CUDA device with
bf16, or a CPU reporting ``avx512_bf16`` / ``amx_bf16``), else fp32: without them, CPU bf16 is
emulated and far slower. The config hash keeps the value written (``auto``); each result records the
precision it ran (``info.precision_used``) and why (``info.precision_reason``).
"""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path

import torch

log = logging.getLogger(__name__)

PRECISIONS = ("fp32", "bf16", "auto")
BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")
#: what emulated bf16 costs, as measured (issue 25): quoted by the one warning an explicit bf16 gives
MEASURED_SLOWDOWN = (
    "a MiniLM-L6 AdamW step (batch 16 x 32, 1 thread) took 8.63 s under bf16 autocast vs 0.573 s in "
    "fp32, 15x slower, on an AVX2-only AMD EPYC"
)
_warned: set[str] = set()


def cpu_flags() -> set[str]:
    """The CPU feature flags Linux reports (``/proc/cpuinfo``); empty where there is none."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    for line in text.splitlines():
        if line.startswith(("flags", "Features")):
            return set(line.split(":", 1)[1].split())
    return set()


def bf16_native(device: torch.device | str) -> tuple[bool, str]:
    """(whether ``device`` runs bf16 matmuls natively, the evidence in words)."""
    dev = torch.device(device)
    if dev.type == "cuda":
        ok = torch.cuda.is_bf16_supported()
        return ok, f"CUDA device {'with' if ok else 'without'} bf16"
    if dev.type == "cpu":
        found = sorted(cpu_flags() & set(BF16_CPU_FLAGS))
        if found:
            return True, f"CPU reports {'/'.join(found)}"
        cap = torch.backends.cpu.get_cpu_capability()
        return False, f"CPU reports no {'/'.join(BF16_CPU_FLAGS)} (torch CPU capability {cap})"
    return False, f"{dev.type} device: native bf16 not known"


def resolve_precision(requested: str, device: torch.device | str) -> tuple[str, str]:
    """(the precision a run uses, why) for ``fl.precision = requested`` on ``device``. An explicit
    ``bf16`` on hardware without native bf16 runs as asked, with one warning per process."""
    if requested == "fp32":
        return "fp32", "fl.precision: fp32"
    if requested not in PRECISIONS:
        raise ValueError(f"unknown precision {requested!r}; allowed: {PRECISIONS}")
    native, why = bf16_native(device)
    if requested == "auto":
        return ("bf16" if native else "fp32"), f"fl.precision: auto; {why}"
    if not native and why not in _warned:
        _warned.add(why)
        log.warning(
            "fl.precision: bf16 on hardware without native bf16 (%s): expect it to be several times "
            "slower than fp32 (%s). Set fl.precision: auto (or fp32) to train in fp32 here.",
            why,
            MEASURED_SLOWDOWN,
        )
    return "bf16", f"fl.precision: bf16; {why}"


def autocast(precision: str, device: torch.device | str) -> contextlib.AbstractContextManager:
    """The context one training step or evaluation batch runs in, for ``precision`` (``fp32`` or
    ``bf16``; ``auto`` is resolved first) on ``device`` (its type picks the autocast backend)."""
    if precision == "fp32":
        return contextlib.nullcontext()
    if precision == "auto":
        precision = resolve_precision(precision, device)[0]
        return autocast(precision, device)
    if precision != "bf16":
        raise ValueError(f"unknown precision {precision!r}; allowed: {PRECISIONS}")
    return torch.autocast(torch.device(device).type, dtype=torch.bfloat16)


def run_precision(ctx) -> contextlib.AbstractContextManager:
    """:func:`autocast` for the precision a run context resolved (else its ``fl.precision``)."""
    return autocast(getattr(ctx, "precision", None) or ctx.cfg.fl.precision, ctx.device)
