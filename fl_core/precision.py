"""Training/evaluation precision (``fl.precision``): ``fp32``, or ``bf16`` = ``torch.autocast`` with
bfloat16 around forward and backward (Micikevicius et al. 2018, mixed precision; bf16 needs no loss
scaling). Parameters, gradients, optimizer state and aggregation stay float32: autocast only casts
the inputs of matmul-like ops, so the master weights the optimizer steps are never rounded."""

from __future__ import annotations

import contextlib

import torch

PRECISIONS = ("fp32", "bf16")


def autocast(precision: str, device: torch.device | str) -> contextlib.AbstractContextManager:
    """The context one training step or evaluation batch runs in, for ``precision`` on ``device``
    (its type, "cpu" or "cuda", picks the autocast backend)."""
    if precision == "fp32":
        return contextlib.nullcontext()
    if precision != "bf16":
        raise ValueError(f"unknown precision {precision!r}; allowed: {PRECISIONS}")
    return torch.autocast(torch.device(device).type, dtype=torch.bfloat16)


def run_precision(ctx) -> contextlib.AbstractContextManager:
    """:func:`autocast` for a run context's ``fl.precision`` and device."""
    return autocast(ctx.cfg.fl.precision, ctx.device)
