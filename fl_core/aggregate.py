"""Server-side aggregation: per-block FedAvg weighted by sample counts (hand-written: it is 20 lines,
and no library averages over the *subset* of clients that trained each parameter)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import torch

from fl_core.plan import ClientUpdate


def weighted_mean_deltas(updates: Iterable[ClientUpdate]) -> dict[str, torch.Tensor]:
    """Σ_i n_i Δ_i / Σ_i n_i per parameter, over the clients that trained it (sorted client order)."""
    sums: dict[str, torch.Tensor] = {}
    weights: dict[str, float] = {}
    for u in sorted(updates, key=lambda u: u.cid):
        for name, d in u.delta.items():
            w = float(u.num_samples)
            if name in sums:
                sums[name].add_(d, alpha=w)
            else:
                sums[name] = d.to(torch.float64) * w if d.dtype == torch.float64 else d * w
            weights[name] = weights.get(name, 0.0) + w
    return {n: s / weights[n] for n, s in sums.items()}


def per_block_fedavg(
    updates: Iterable[ClientUpdate], global_values: Mapping[str, torch.Tensor]
) -> dict[str, torch.Tensor]:
    """New values ``θ + mean Δ`` for every parameter some client trained; the others are absent."""
    return {n: global_values[n] + d for n, d in weighted_mean_deltas(updates).items()}
