"""Random layer updates: the common practice that FedTLU (Park & Joe-Wong 2024) compares against.

``mode: client`` — each client trains ``k`` blocks drawn uniformly each round (seeded per round and
client), + head; per-block FedAvg. ``mode: server`` — the exact baseline of FedTLU: the same round
as FedTLU (clients train every block with ``client_training: all``, or only the drawn ones with
``selected``), one draw per round, and the aggregate is applied only to the drawn blocks + head.
"""

from __future__ import annotations

from fl_core.methods.base import Method, TrainPlan, register
from fl_core.models import HEAD
from fl_core.params.random_k import RandomParams


@register("random")
class RandomK(Method):
    """k blocks drawn uniformly at random each round, per client (``mode: client``) or shared (``server``)."""

    family = "fedtlu"

    Params = RandomParams

    def _draw(self, *key) -> list[int]:
        return (
            self.ctx.rng("random-blocks", *key).choice(self.num_blocks, size=self.p.k, replace=False).tolist()
        )

    def configure_train(self, rnd, clients):
        if self.p.mode == "client":
            return {c: TrainPlan.of(self._draw(rnd, c)) for c in clients}
        self.applied = set(self._draw(rnd))
        blocks = range(self.num_blocks) if self.p.client_training == "all" else self.applied
        return self.same_for_all(clients, TrainPlan.of(blocks, applied=sorted(self.applied)))

    def aggregate(self, rnd, updates):
        new = super().aggregate(rnd, updates)
        if self.p.mode == "client":
            return new
        group = self.ctx.model.group_of
        return {n: v for n, v in new.items() if group[n] == HEAD or group[n] in self.applied}

    def round_info(self, rnd):
        return {"applied_blocks": sorted(self.applied)} if self.p.mode == "server" else {}
