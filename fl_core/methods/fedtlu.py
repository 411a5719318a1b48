"""FedTLU: federated learning with targeted layer updates (Park & Joe-Wong, arXiv 2412.17692, ICASSP 2025).

Each round the server scores every block on the change the round would make to the global model and
applies the aggregate only to the ``k`` highest-scoring blocks (+ head); the other blocks keep their
old values bit for bit. The score of a parameter tensor ``W`` with ``n`` entries is

    Score(ΔW) = ||ΔW||_2 / ( sqrt(n) · std(ΔW) )                                    (paper, Sec. 3)

with ``std`` the population standard deviation, computed in float64 with ``eps = 1e-12`` added to the
denominator. The paper scores a *layer*: a block's score is the score of its whole update, all its
tensors concatenated (``score: block``, default). ``score: tensor_sum`` (an ablation) sums per-tensor
scores instead; every weight matrix then scores ≈ 1 and the block's small LayerNorm vectors decide the
ranking. Since ``||Δ||/sqrt(n)`` is the RMS, the score equals ``sqrt(1 + (mean/std)^2)``: it measures
how coherently the entries move, not how far (a scaled update has the same score). Near-zero-mean
updates score ≈ 1 under every reading, so each round's block scores and their spread (max − min) are
recorded (:meth:`FedTLU.round_info`: ``applied_blocks``, ``block_scores``, ``block_score_spread``) to
show whether the ranking was decisive or a near-tie. Spec: fedtlu.md (project specs).

Round (our reading of the paper, as in the spec):
1. clients train every block + head (``client_training: all``);
2. ``agg`` = the aggregate (default per-block FedAvg), ``Δ = agg − global``;
3. score every block on ``Δ``, pick the top-``k`` (ties: lower block index first);
4. apply ``agg`` to the chosen blocks and the head only.

``warmup_rounds``: full FedAvg rounds first (everything applied; scores still logged).
``client_training: selected`` (cheaper variant): clients train only the blocks chosen last round;
every ``rescore_every`` rounds (counted from the end of the warm-up) one round trains all blocks to
refresh the scores. Those refresh rounds are ordinary train rounds, so their cost is counted as such.

The chosen blocks and the block scores of every round are kept in ``self.history`` (also in
``state_dict``); each plan's ``info`` says whether the round trains all blocks.

Departures from the paper (named): the paper's body was not available; the round follows its
summaries (spec). The score is computed in float64 with an ``eps``; the head is always applied.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from fl_core.methods.base import Method, TrainPlan, register
from fl_core.models import HEAD
from fl_core.params.fedtlu import FedTLUParams, ScoreMode

EPS = 1e-12


def tlu_score(delta: torch.Tensor, eps: float = EPS) -> float:
    """``||Δ||_2 / (sqrt(n)·std(Δ) + eps)`` in float64, population std. Finite for any finite input:
    a zero tensor scores 0; a constant non-zero tensor (std 0, e.g. one element) scores ``|c|/eps``."""
    d = delta.detach().to(torch.float64).flatten()
    n = d.numel()
    if n == 0:
        return 0.0
    std = float(d.std(correction=0)) if n > 1 else 0.0
    return float(torch.linalg.vector_norm(d)) / (math.sqrt(n) * std + eps)


def block_scores(
    delta: dict[str, torch.Tensor],
    group_of: dict[str, Any],
    num_blocks: int,
    mode: ScoreMode = "block",
) -> np.ndarray:
    """Per-block score of ``delta``: ``block`` — :func:`tlu_score` of the block's tensors concatenated;
    ``tensor_sum`` — the sum of the per-tensor scores. NaN for a block with no tensor in ``delta``
    (not trained this round)."""
    parts: dict[int, list[torch.Tensor]] = {}
    for name, d in delta.items():
        g = group_of[name]
        if isinstance(g, int):
            parts.setdefault(g, []).append(d.detach().flatten())
    scores = np.full(num_blocks, np.nan)
    for g, ts in parts.items():
        scores[g] = tlu_score(torch.cat(ts)) if mode == "block" else sum(tlu_score(t) for t in ts)
    return scores


def score_spread(scores: np.ndarray) -> float | None:
    """max − min of the scored blocks (None if fewer than one block was scored)."""
    s = np.asarray(scores, dtype=float)
    s = s[np.isfinite(s)]
    return float(s.max() - s.min()) if len(s) else None


def top_k_blocks(scores: np.ndarray, k: int) -> list[int]:
    """Indices of the ``k`` largest scores (NaN ranks last; ties: lower index first), sorted."""
    s = np.where(np.isnan(scores), -np.inf, scores)
    order = np.lexsort((np.arange(len(s)), -s))  # primary: -score, secondary: index
    return sorted(int(j) for j in order[:k])


@register("fedtlu")
class FedTLU(Method):
    """Targeted layer updates (Park & Joe-Wong 2024): apply the aggregate to the top-k blocks by
    ``||Δ||/(sqrt(n)·std(Δ))`` (+ head), freeze the rest."""

    family = "fedtlu"

    Params = FedTLUParams

    def __init__(self, params, ctx) -> None:
        super().__init__(params, ctx)
        self.chosen: list[int] | None = None  # blocks applied at the last targeted round
        self.history: list[dict[str, Any]] = []
        self._trains_all: bool = True

    @property
    def k(self) -> int:
        return self.p.k if self.p.k is not None else self.num_blocks // 2

    def is_warmup(self, rnd: int) -> bool:
        return rnd < self.p.warmup_rounds

    def trains_all(self, rnd: int) -> bool:
        """Do clients train every block this round?"""
        if self.p.client_training == "all" or self.is_warmup(rnd) or self.chosen is None:
            return True
        return (rnd - self.p.warmup_rounds) % self.p.rescore_every == 0

    def configure_train(self, rnd, clients):
        self._trains_all = self.trains_all(rnd)
        blocks = range(self.num_blocks) if self._trains_all else self.chosen
        info = {"trains_all": self._trains_all, "warmup": self.is_warmup(rnd)}
        return self.same_for_all(clients, TrainPlan.of(blocks, **info))

    def aggregate(self, rnd, updates):
        new = super().aggregate(rnd, updates)
        group = self.ctx.model.group_of
        old = self.ctx.global_values
        delta = {n: v - old[n] for n, v in new.items() if isinstance(group[n], int)}
        scores = block_scores(delta, group, self.num_blocks, self.p.score)
        if self.is_warmup(rnd):
            applied = sorted({int(group[n]) for n in delta})
        else:
            # In a `selected` round only the previously chosen blocks were trained: they are the top-k
            # of the scored ones, so the choice carries over unchanged.
            applied = top_k_blocks(scores, self.k)
            self.chosen = applied
        self.history.append(
            {
                "round": rnd,
                "warmup": self.is_warmup(rnd),
                "trains_all": self._trains_all,
                "scores": [None if np.isnan(s) else float(s) for s in scores],
                "chosen": applied,
            }
        )
        keep = set(applied)
        return {n: v for n, v in new.items() if group[n] == HEAD or group[n] in keep}

    def round_info(self, rnd: int) -> dict[str, Any]:
        """The round's applied blocks, every block's score and their spread (for the report/figures)."""
        h = next((h for h in reversed(self.history) if h["round"] == rnd), None)
        if h is None:
            return {}
        return {
            "applied_blocks": h["chosen"],
            "block_scores": h["scores"],
            "block_score_spread": score_spread(np.array([np.nan if v is None else v for v in h["scores"]])),
            "score_mode": self.p.score,
        }

    def state_dict(self):
        return {"chosen": self.chosen, "history": list(self.history)}

    def load_state_dict(self, state):
        self.chosen = state.get("chosen")
        self.history = list(state.get("history", []))
