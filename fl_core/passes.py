"""Extra passes over a client's data (scores, a Fisher trace, probes, trial epochs): a method says what
to compute; this module runs it and records what it cost, so no method writes a cost record.

A method opens one :class:`ExtraPass` per client and purpose (``kind``: "score", "setup", ...) on
its read-only :class:`~fl_core.method_view.MethodView` (``ExtraPass(self.ctx, ...)``; the pass keeps
the run context behind it to itself), runs its passes through it, and closes it; the run's cost log (``costs.csv``) gets the record at
:meth:`ExtraPass.close`, so records keep the order in which the method closes them. FLOPs are the
same analytic counts local training uses (:mod:`fl_core.flops`), one :meth:`CostRecord.add_pass` per
batch, whatever the computation does inside (e.g. ``vmap`` over per-sample gradients).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import numpy as np

from fl_core.context import RunContext
from fl_core.cost_record import CostRecord, Timer
from fl_core.flops import step_flops
from fl_core.method_view import MethodView, framework_context
from fl_core.plan import TrainPlan
from fl_core.trainer import Loop, train

__all__ = ["ExtraPass"]

T = TypeVar("T")


class ExtraPass:
    """The cost record of one client's extra passes in round ``rnd`` (-1: before round 0); ``ctx``: the
    method's view (or, in framework code, the run context)."""

    def __init__(
        self,
        ctx: MethodView | RunContext,
        rnd: int,
        cid: int,
        kind: str,
        trainable_params: int = 0,
        bytes_up: int = 0,
    ) -> None:
        self._ctx = framework_context(ctx)
        self._rec = CostRecord(
            round=rnd, client=cid, kind=kind, trainable_params=trainable_params, bytes_up=bytes_up
        )
        self._closed = False

    def train(self, plan: TrainPlan, names: list[str], epochs: list[list[np.ndarray]], loop: Loop) -> float:
        """Batches through :func:`fl_core.trainer.train` (steps, or accumulated gradients with
        ``loop.opt`` None); the trainer counts every batch and the wall time here."""
        return train(self._ctx, plan, names, epochs, self._rec, loop)

    def measure(
        self,
        compute: Callable[[], T],
        rows: np.ndarray,
        *,
        chunk: int | None = None,
        plan: TrainPlan | None = None,
        names: list[str] | None = None,
        first_grad: int = 0,
        share: float = 0.0,
        backward: bool = True,
        forwards: int = 1,
    ) -> T:
        """Run ``compute()`` (a pass over ``rows``) timed, and count it: ``rows`` in batches of
        ``chunk`` (default: all in one), each ``forwards`` forward passes and, if ``backward``, one
        backward; gradients reach ``plan``'s parameters ``names`` (:meth:`RunContext.flops`), else
        block ``first_grad`` and up with ``share`` of every block's weights trained."""
        with Timer() as t:
            out = compute()
        self._rec.wall_s += t.s
        lengths = self._ctx.splits.train.lengths
        step = chunk or max(len(rows), 1)
        for s in range(0, len(rows), step):
            idx = rows[s : s + step]
            if plan is not None:
                f, b = self._ctx.flops(idx, plan, names)
            else:
                arch, num = self._ctx.model.arch, self._ctx.model.num_blocks
                f, b = step_flops(arch, len(idx), int(lengths[idx].max()), first_grad, [share] * num)
            self._rec.add_pass(lengths[idx], f * forwards, b if backward else 0.0)
        return out

    def timed(self, compute: Callable[[], T]) -> T:
        """Work that is no pass over data (e.g. sorting a curriculum): its wall time only."""
        with Timer() as t:
            out = compute()
        self._rec.wall_s += t.s
        return out

    def upload(self, nbytes: int) -> None:
        """What the client sends the server besides its update (e.g. its scores)."""
        self._rec.bytes_up += nbytes

    def peak_memory(self, nbytes: int) -> None:
        """The analytic peak memory of a pass (``fl_core.budget_model``); the record keeps the max."""
        self._rec.peak_memory_bytes = max(self._rec.peak_memory_bytes, nbytes)

    def close(self) -> None:
        """Hand the record to the run's cost log (once)."""
        if self._closed:
            raise RuntimeError("ExtraPass closed twice")
        self._closed = True
        self._ctx.costs.add(self._rec)
