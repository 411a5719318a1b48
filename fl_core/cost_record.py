"""What each client spent in each round: :class:`CostRecord` (one training or extra pass, counted by
:meth:`CostRecord.add_pass`), the run's :class:`CostLog` (``costs.csv``) and a wall-clock
:class:`Timer`. The analytic FLOPs that go into a record: :mod:`fl_core.flops`."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np


@dataclass
class CostRecord:
    round: int
    client: int
    kind: str  # "train", or an extra pass: "score", "setup", ...
    trainable_params: int = 0
    bytes_up: int = 0
    bytes_down: int = 0
    samples: int = 0
    tokens: int = 0
    padded_tokens: int = 0
    flops_fwd: float = 0.0
    flops_bwd: float = 0.0
    wall_s: float = 0.0
    peak_memory_bytes: int = (
        0  # analytic (fl_core.budget_model.client_step_memory / pass_memory), max over the pass
    )

    def add_pass(self, lengths: np.ndarray, flops_fwd: float, flops_bwd: float = 0.0) -> None:
        """Count one pass over a batch whose rows have token ``lengths`` (padded to the longest):
        the one place a pass over data is counted."""
        self.flops_fwd += flops_fwd
        self.flops_bwd += flops_bwd
        self.samples += len(lengths)
        self.tokens += int(lengths.sum())
        self.padded_tokens += len(lengths) * int(lengths.max())


@dataclass
class CostLog:
    records: list[CostRecord] = field(default_factory=list)

    def add(self, rec: CostRecord) -> CostRecord:
        self.records.append(rec)
        return rec

    def rows(self) -> list[dict]:
        return [asdict(r) for r in self.records]


class Timer:
    def __enter__(self) -> Timer:
        self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc) -> None:
        self.s = time.perf_counter() - self.t0
