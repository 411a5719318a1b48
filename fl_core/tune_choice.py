"""The tuning rule, pure (no Optuna, no torch): per-lr statistics over seeds, the tie rule, the choice
and the edge extension. :mod:`fl_core.tune_record` applies it; the report's tuning section re-reads it.

A trial is ``(lr, seed, state, value)``. An lr is a *candidate* only where every tuning seed completed
it (a pruned or failed trial on any seed drops it). Per candidate: the mean of the objective over the
seeds and its standard error (sample sd / sqrt(n)). :data:`TIE_RULE` says how the lr is chosen.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

TIE_RULE = (
    "the winner is the lr with the best mean objective over the tuning seeds; every lr whose mean is "
    "within one standard error (the winner's) of the winner's mean is tied with it, and the chosen lr "
    "is the smallest tied lr. An lr is a candidate only where every seed completed it (pruned: not)"
)

Trial = tuple[float, int, str, float | None]  # (lr, seed, state, value)


@dataclass(frozen=True)
class LrStat:
    """One lr over the tuning seeds: mean and standard error where it is a candidate, else None."""

    lr: float
    mean: float | None
    se: float | None
    n: int  # seeds that completed it
    pruned: int = 0  # seeds that pruned it


@dataclass(frozen=True)
class Choice:
    """The chosen lr (None: no candidate), the best-mean lr, and the tied lrs (winner included)."""

    lr: float | None
    winner: float | None
    ties: tuple[float, ...]


def as_trials(rows: Iterable[dict]) -> list[Trial]:
    """The (lr, seed, state, value) of trial rows (a record's CSV; an old one without seeds: seed 0)."""
    out = []
    for r in rows:
        v, seed = r["value"], r.get("seed", 0)
        value = None if v is None or v != v else float(v)
        out.append((float(r["lr"]), int(seed) if seed == seed else 0, str(r["state"]), value))
    return out


def aggregate(trials: Iterable[Trial], seeds: Sequence[int]) -> list[LrStat]:
    """Per lr tried (ascending): mean and SE over ``seeds`` where every seed completed it."""
    done: dict[float, dict[int, float]] = {}
    pruned: dict[float, int] = {}
    for lr, seed, state, value in trials:
        per = done.setdefault(float(lr), {})
        pruned[float(lr)] = pruned.get(float(lr), 0) + (state == "pruned" and seed in seeds)
        if state == "complete" and value is not None and value == value and seed in seeds:
            per[seed] = float(value)
    out = []
    for lr in sorted(done):
        vals = [done[lr][s] for s in seeds if s in done[lr]]
        if len(vals) < len(seeds) or not vals:
            out.append(LrStat(lr, None, None, len(vals), pruned[lr]))
            continue
        mean = sum(vals) / len(vals)
        sd = math.sqrt(sum((v - mean) ** 2 for v in vals) / (len(vals) - 1)) if len(vals) > 1 else 0.0
        out.append(LrStat(lr, mean, sd / math.sqrt(len(vals)), len(vals)))
    return out


def choose(stats: Sequence[LrStat]) -> Choice:
    """:data:`TIE_RULE` applied to ``stats`` (equal best means: the smaller lr is the winner)."""
    cand = [s for s in stats if s.mean is not None]
    if not cand:
        return Choice(None, None, ())
    win = max(cand, key=lambda s: (s.mean, -s.lr))
    tied = tuple(sorted(s.lr for s in cand if s.mean >= win.mean - (win.se or 0.0) - 1e-12))
    return Choice(tied[0], win.lr, tied)


def next_lr(lrs: Sequence[float], up: bool) -> float:
    """One step past the top (``up``) or bottom edge of ``lrs``: on the 1-3 ladder (..., 1e-3, 3e-3,
    1e-2, ...) when the edge is on it, else the grid's own ratio at that edge (a single lr: 3)."""
    s = sorted(lrs)
    edge = s[-1] if up else s[0]
    k = math.floor(math.log10(edge) + 1e-9)
    mant = edge / 10**k
    if abs(mant - 1) < 1e-6:
        return (3 * 10**k) if up else (3 * 10 ** (k - 1))
    if abs(mant - 3) < 1e-6:
        return (10 ** (k + 1)) if up else (10**k)
    if len(s) < 2:
        return edge * 3 if up else edge / 3
    ratio = s[-1] / s[-2] if up else s[1] / s[0]
    return edge * ratio if up else edge / ratio


def centred(lr: float) -> tuple[float, float, float]:
    """Three lrs around ``lr`` on the 1-3 ladder: one step down, ``lr``, one step up."""
    return (next_lr([lr], up=False), lr, next_lr([lr], up=True))


def extension(stats: Sequence[LrStat], base: Sequence[float], max_extend: int) -> float | None:
    """The next lr to try: one step past an edge of the lrs tried that holds the winner (best mean) or
    the chosen lr, at most ``max_extend`` steps past ``base`` on that side; else None."""
    tried = [s.lr for s in stats]
    c = choose(stats)
    if c.lr is None or len(tried) < 2:
        return None
    for lr in (c.winner, c.lr):
        if lr not in (tried[0], tried[-1]):
            continue
        up = lr == tried[-1]
        past = (
            sum(x > max(base) * (1 + 1e-9) for x in tried)
            if up
            else sum(x < min(base) * (1 - 1e-9) for x in tried)
        )
        if past < max_extend:
            return next_lr(tried, up)
    return None


def format_stats(stats: Sequence[LrStat], n_seeds: int) -> str:
    """``lr: mean ± se`` per lr (validation %; one seed: no SE), or on how many seeds it did not complete."""
    out = []
    for s in stats:
        if s.mean is None:
            why = f"pruned on {s.pruned}" if s.pruned else f"not completed on {n_seeds - s.n}"
            out.append(f"{s.lr:g}: {why} of {n_seeds} seeds")
        else:
            se = f" ± {100 * s.se:.1f}" if n_seeds > 1 else ""
            out.append(f"{s.lr:g}: {100 * s.mean:.1f}{se}")
    return ", ".join(out)
