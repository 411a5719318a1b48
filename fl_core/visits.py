"""Expected reads per row of a split over one run, from the config alone: the prefix cache is worth
filling for a split only when its rows are read more than once (a fill costs one pass per row)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fl_core.context import RunContext


def evaluations(rounds: int, eval_every: int) -> int:
    """Rounds with an evaluation: every ``eval_every``-th, and always the last."""
    return rounds // eval_every + (1 if rounds % eval_every else 0)


def expected_visits(ctx: RunContext, split: str) -> float:
    """Mean reads per row of ``split``: train, clients_per_round sampled clients per round, each
    running min(local_steps x batch, local_epochs x its rows) rows; test, one read per evaluation."""
    fl = ctx.cfg.fl
    if split != "train":
        return float(evaluations(fl.rounds, fl.eval_every))
    n = len(ctx.splits.train)
    if not n or not ctx.clients:
        return 0.0
    cap = fl.local_steps * fl.batch_size if fl.local_steps else math.inf
    per_client = sum(min(cap, fl.local_epochs * len(c)) for c in ctx.clients) / len(ctx.clients)
    return fl.rounds * fl.clients_per_round * per_client / n
