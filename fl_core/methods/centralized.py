"""``centralized``: the upper reference at equal compute (issue 11).

One client holds the whole training split and trains every block + head, taking in each round as
many optimizer steps as all participating clients of ``full`` take together:
``clients_per_round × local_steps`` (or, without a step cap, ``clients_per_round × local_epochs ×
⌈N / (num_clients · batch_size)⌉``, the steps of an average client). Over the run that is
``rounds × clients_per_round × local_steps`` steps, evaluated at the same rounds as the grid. The
optimizer restarts each round, as a federated client's does; aggregation of one client is its update.
"""

from __future__ import annotations

import math
from typing import Any

from fl_core.methods.base import register
from fl_core.methods.reference import Full


def equal_compute_steps(fl: Any, num_train: int) -> int:
    """Optimizer steps per round that all ``clients_per_round`` clients of ``full`` take together."""
    per_client = fl.local_steps or fl.local_epochs * math.ceil(num_train / (fl.num_clients * fl.batch_size))
    return fl.clients_per_round * per_client


@register("centralized")
class Centralized(Full):
    """One client with all training data, full fine-tuning, the steps of a whole ``full`` round per round."""

    family = "references"
    partition_free = True

    @classmethod
    def adjust_cell(cls, cfg: Any, num_train: int) -> Any:
        fl = cfg.fl
        steps = equal_compute_steps(fl, num_train)
        epochs = math.ceil(steps / max(1, math.ceil(num_train / fl.batch_size)))  # enough batches to cap
        one = fl.model_copy(
            update={"num_clients": 1, "clients_per_round": 1, "local_steps": steps, "local_epochs": epochs}
        )
        return cfg.model_copy(
            update={"fl": one, "data": cfg.data.model_copy(update={"min_partition_size": 1})}
        )
