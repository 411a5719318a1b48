"""Measured peak memory and time of one real training step, and a disk cache of those peaks.

:func:`measure_step` builds a registered model, runs one real training step as :mod:`fl_core.client`
does (frozen prefix under no_grad, AdamW/SGD, grad clipping; warm-up, timed steps, then one step under
memory tracking) and returns the measured peak memory and step time: on CUDA
``torch.cuda.max_memory_allocated``; on CPU the memory events of ``torch.profiler`` (with
``profile_memory=True`` every allocation and free of PyTorch's CPU allocator is recorded with its size
and time, so the running sum of those events is the live tensor memory and its maximum is the peak;
weights and optimizer state, allocated before, are added by summing their storages). ``tracemalloc``
does not see PyTorch's allocations (they bypass Python's allocator) and RSS mixes in the interpreter,
libraries and freed-but-cached pages, so neither measures tensor memory.

:func:`measured_peak` is what budget fits use: the measured peak of one configuration, profiled once
per (model, plan, batch, seq, optimizer, device, torch version) and cached as JSON under the layerbench
cache dir (``$LAYERBENCH_CACHE/memory``), so a grid profiles each candidate configuration once.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import statistics
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from types import SimpleNamespace
from typing import Any, Literal

import torch
import torch.nn.functional as F

from fl_core.model_specs import model_pooling
from fl_core.models.lora import add_lora
from fl_core.optim import local_optimizer

Optimizer = Literal["adamw", "sgd"]
LORA_TARGETS = ("query", "value")


@dataclass(frozen=True)
class Measurement:
    peak_bytes: int  # measured peak of live tensor memory during one step (weights included)
    persistent_bytes: int  # weights + optimizer state held between steps
    step_s: float  # median wall time of one step
    method: str  # how peak_bytes was measured
    device: str


def _storage_bytes(tensors: Iterable[torch.Tensor]) -> int:
    seen: dict[int, int] = {}
    for x in tensors:
        st = x.untyped_storage()
        seen[st.data_ptr()] = st.nbytes()
    return sum(seen.values())


def _profiled_peak_delta(step) -> int:
    """Peak increase of live CPU tensor memory while ``step()`` runs, from the profiler's memory events."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        step()
    events = [
        e
        for e in prof.profiler.kineto_results.events()
        if e.name() == "[memory]" and e.device_type() == torch.autograd.DeviceType.CPU
    ]
    events.sort(key=lambda e: e.start_ns())
    live = peak = 0
    for e in events:
        live += e.nbytes()
        peak = max(peak, live)
    return peak


def inject_lora(
    model,
    r: int,
    alpha: float = 16,
    dropout: float = 0.0,
    targets: Iterable[str] = LORA_TARGETS,
    seed: int = 0,
) -> list[str]:
    """LoRA on a bare BlockModel (no run), exactly as the ``lora`` method injects it
    (:func:`fl_core.models.lora.add_lora`); returns the adapter parameter names."""
    shim = SimpleNamespace(
        model=model, touched=set(), global_values={}, device=model.device, torch_seed=lambda *key: seed
    )
    return add_lora(shim, r, alpha, dropout, tuple(targets))


def _trained_names(m, t: int | None, r: int | None, blocks, lora: dict[str, Any], seed: int):
    """(names trained, lowest block backward reaches) of a plan on the fresh model ``m``."""
    from fl_core.models import HEAD

    L = m.num_blocks
    if sum(x is not None for x in (t, r, blocks)) != 1:
        raise ValueError("give exactly one of t, r or blocks")
    if r is not None:
        return set(inject_lora(m, r, seed=seed, **lora)), 0
    if t is not None:
        if not 0 <= t <= L:
            raise ValueError(f"t={t} but the model has {L} blocks")
        chosen = set(range(L - t, L))
    else:
        chosen = {int(b) for b in blocks}
    names = {n for n, g in m.group_of.items() if isinstance(g, int) and g in chosen}
    return names | set(m.names_in(HEAD)), min(chosen, default=L)


def measure_step(
    model_name: str,
    batch: int,
    seq_len: int,
    t: int | None = None,
    r: int | None = None,
    optimizer: Optimizer = "adamw",
    *,
    blocks: Iterable[int] | None = None,
    momentum: float = 0.0,
    num_labels: int = 4,
    device: str = "cpu",
    lr: float = 5e-4,
    lora_alpha: float = 16,
    lora_dropout: float = 0.0,
    lora_targets: Iterable[str] = LORA_TARGETS,
    warmup: int = 1,
    repeats: int = 3,
    seed: int = 0,
    model=None,
) -> Measurement:
    """Build ``model_name`` (or use ``model``, a fresh BlockModel), train the last ``t`` blocks + head,
    LoRA rank ``r`` + head, or the block set ``blocks`` + head for one step as :mod:`fl_core.client`
    does (frozen prefix under no_grad, AdamW/SGD, grad clipping), and measure peak memory and step time."""
    from fl_core.models import build_model

    dev = torch.device(device)
    m = model if model is not None else build_model(model_name, num_labels, seed=seed)
    m.to(dev)
    lora = {"alpha": lora_alpha, "dropout": lora_dropout, "targets": tuple(lora_targets)}
    names, first = _trained_names(m, t, r, None if blocks is None else list(blocks), lora, seed)
    m.set_trainable(names)
    params = [m.params[n] for n in sorted(names)]
    opt = local_optimizer(params, optimizer, lr, momentum=momentum)  # the one the clients run
    step = _train_step(m, params, opt, first, batch, seq_len, seed, dev)
    times = _timed_steps(step, opt, dev, warmup, repeats)
    peak, persistent, how = _peak_bytes(m, opt, step, dev)
    m.set_trainable(set())
    return Measurement(
        int(peak), int(persistent), statistics.median(times) if times else math.nan, how, str(dev)
    )


def _sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def _train_step(m, params, opt, first: int, batch: int, seq_len: int, seed: int, dev: torch.device):
    """One training step (as :mod:`fl_core.client` does) on a seeded random batch, as a callable."""
    gen = torch.Generator().manual_seed(seed)
    ids = torch.randint(1000, m.arch.vocab, (batch, seq_len), generator=gen).to(dev)
    mask = torch.ones(batch, seq_len, dtype=torch.long, device=dev)
    y = torch.randint(0, m.arch.num_labels, (batch,), generator=gen).to(dev)
    m.hf.train()

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(m.forward(ids, mask, first), y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()

    return step


def _timed_steps(step, opt, dev: torch.device, warmup: int, repeats: int) -> list[float]:
    """Seconds of each of ``repeats`` steps after ``warmup`` untimed ones."""
    for _ in range(warmup):
        step()
    opt.zero_grad(set_to_none=True)
    times = []
    for _ in range(repeats):
        _sync(dev)
        t0 = time.perf_counter()
        step()
        _sync(dev)
        times.append(time.perf_counter() - t0)
    opt.zero_grad(set_to_none=True)
    return times


def _peak_bytes(m, opt, step, dev: torch.device) -> tuple[int, int, str]:
    """(peak, persistent bytes, how it was measured) of one more step: weights, buffers and optimizer
    state, plus the step's own peak (CUDA allocator stats; on CPU, the profiler's memory events)."""
    state = [v for s in opt.state.values() for v in s.values() if torch.is_tensor(v)]
    persistent = _storage_bytes([*m.hf.parameters(), *m.hf.buffers(), *state])
    if dev.type == "cuda":
        _sync(dev)
        torch.cuda.reset_peak_memory_stats(dev)
        base = torch.cuda.memory_allocated(dev)
        step()
        _sync(dev)
        return (
            torch.cuda.max_memory_allocated(dev) - base + persistent,
            persistent,
            "torch.cuda.max_memory_allocated",
        )
    return persistent + _profiled_peak_delta(step), persistent, "torch.profiler CPU memory events"


# -- measured peaks for budget fits, cached on disk ----------------------------------------------
def memory_cache_dir():
    from fl_core.data.splits import cache_dir

    return cache_dir() / "memory"


def measured_peak(
    model_name: str,
    num_labels: int,
    batch: int,
    seq: int,
    plan: dict[str, Any],
    *,
    optimizer: Optimizer = "adamw",
    momentum: float = 0.0,
    lora_dropout: float = 0.0,
    lora_targets: Iterable[str] = LORA_TARGETS,
    device: str = "cpu",
) -> int:
    """Measured peak bytes of one training step of ``plan`` (``{"t": t}``, ``{"r": r}`` or
    ``{"blocks": [...]}``) on ``model_name``: profiled once (:func:`measure_step`, one warm-up step),
    then read from the disk cache (:func:`memory_cache_dir`)."""
    plan = {k: (sorted(int(b) for b in v) if k == "blocks" else int(v)) for k, v in plan.items()}
    lora = plan.get("r") is not None
    key = {
        "model": model_name,
        "pooling": model_pooling(model_name),
        "num_labels": num_labels,
        "batch": batch,
        "seq": seq,
        "plan": plan,
        "optimizer": optimizer,
        "fused": optimizer == "adamw",  # fl_core.optim: AdamW runs fused (its peak differs from the loop's)
        "momentum": momentum if optimizer == "sgd" else 0.0,
        "lora": {"dropout": lora_dropout, "targets": sorted(lora_targets)} if lora else None,
        "device": torch.device(device).type,
        "torch": torch.__version__,
    }
    h = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:20]
    path = memory_cache_dir() / f"{h}.json"
    if path.is_file():
        return int(json.loads(path.read_text())["peak_bytes"])
    kw = {"lora_dropout": lora_dropout, "lora_targets": tuple(lora_targets)} if lora else {}
    m = measure_step(
        model_name, batch, seq, optimizer=optimizer, momentum=key["momentum"], num_labels=num_labels,
        device=device, repeats=0, **plan, **kw,
    )  # fmt: skip
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    tmp.write_text(json.dumps({**key, **asdict(m)}, sort_keys=True))
    os.replace(tmp, path)
    return m.peak_bytes
