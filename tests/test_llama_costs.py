"""The Llama cost model (GQA, SwiGLU, RMSNorm, tied head) against measurement on tiny-llama (RANDOM
WEIGHTS): parameters exactly, FLOPs within 3 % of ``FlopCounterMode``, peak memory within 15 % of the
profiler."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from fl_core.budget_model import arch_of, param_counts, step_cost
from fl_core.flops import step_flops
from fl_core.models import HEAD, build_model
from fl_core.profiling import measure_step

B, S, C = 8, 64, 5


@pytest.mark.parametrize("task", ["classify", "lm"])
def test_parameters_and_flops_match_the_model(task):
    m = build_model("tiny-llama", C, seed=0, task=task)
    # the flop counter sees attention only as matmuls (CPU SDPA kernels are not counted)
    m.hf.config._attn_implementation = m._base.config._attn_implementation = "eager"
    assert param_counts(m.arch).total(m.num_blocks) == sum(p.numel() for p in m.hf.parameters())
    ids = torch.randint(100, 5000, (B, S), generator=torch.Generator().manual_seed(0))
    mask, y = torch.ones_like(ids), torch.zeros(B, dtype=torch.long)
    for first in range(m.num_blocks + 1):
        names = [n for n, g in m.group_of.items() if g == HEAD or (isinstance(g, int) and g >= first)]
        m.set_trainable(set(names))
        with FlopCounterMode(display=False) as counter:
            F.cross_entropy(*m.loss_view(m.forward(ids, mask, first), ids, mask, y)).backward()
        share = [float(i >= first) for i in range(m.num_blocks)]
        analytic = sum(step_flops(m.arch, B, S, first, share))
        assert analytic == pytest.approx(counter.get_total_flops(), rel=0.03), first
    m.set_trainable(set())


def test_arch_from_the_registry_matches_the_built_model():
    assert arch_of("tiny-llama", C) == build_model("tiny-llama", C, seed=0).arch


def test_peak_memory_within_15_percent_of_the_profiler():
    arch = arch_of("tiny-llama", C)
    configs = [{"t": t} for t in range(arch.num_blocks + 1)] + [{"r": 8}]
    measured = [measure_step("tiny-llama", B, S, num_labels=C, repeats=0, **c).peak_bytes for c in configs]
    for c, got in zip(configs, measured, strict=True):
        assert got == pytest.approx(step_cost(arch, B, S, **c).memory, rel=0.15), c
    assert all(a < b for a, b in zip(measured, measured[1 : arch.num_blocks + 1], strict=False))
