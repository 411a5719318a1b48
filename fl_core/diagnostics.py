"""Method diagnostics, declared once: what a method records about a round (:meth:`Method.round_info`,
a ``method_<key>`` column of ``rounds.csv``) or about one client's plan (``TrainPlan.info``, an
``info_<key>`` column of ``selections.csv``), with its meaning.

The simulator refuses a key nobody declared (one clear error in round 0, naming the method and how to
declare it), and the report reads columns through :func:`column`, never by spelling a prefix. A
plugin method declares its own keys with :func:`declare` at import. Bottom of the package: no torch,
nothing from ``fl_core``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Scope = Literal["round", "client"]
PREFIX: dict[str, str] = {"round": "method_", "client": "info_"}


@dataclass(frozen=True)
class Diagnostic:
    """``key`` as the method writes it, where (``round`` or ``client``), what it means."""

    key: str
    scope: Scope
    meaning: str

    @property
    def column(self) -> str:
        return PREFIX[self.scope] + self.key


DECLARED: dict[tuple[str, str], Diagnostic] = {}


def declare(*diagnostics: Diagnostic) -> None:
    """Declare diagnostics (a plugin: at import); the same key twice in a scope must mean the same."""
    for d in diagnostics:
        old = DECLARED.get((d.scope, d.key))
        if old is not None and old != d:
            raise ValueError(f"diagnostic {d.scope}/{d.key!r} declared twice with different meanings")
        DECLARED[(d.scope, d.key)] = d


def column(scope: Scope, key: str) -> str:
    """The store column of a declared diagnostic (``KeyError`` naming it if undeclared)."""
    if (scope, key) not in DECLARED:
        raise KeyError(f"diagnostic {scope}/{key!r} is not declared in fl_core.diagnostics")
    return DECLARED[(scope, key)].column


def undeclared(scope: Scope, keys) -> list[str]:
    """The keys of ``keys`` nobody declared in ``scope``."""
    return [k for k in keys if (scope, k) not in DECLARED]


declare(
    # per round (rounds.csv)
    Diagnostic("applied_blocks", "round", "blocks the server applied to the global model this round"),
    Diagnostic("block_scores", "round", "FedTLU's score of every block's update this round"),
    Diagnostic("block_score_spread", "round", "max - min of FedTLU's block scores this round"),
    Diagnostic("score_mode", "round", "how FedTLU scores a block (block | tensor_sum)"),
    Diagnostic("data_share", "round", "FibecFed: mean share of a client's batches in its paced pool"),
    # per client plan (selections.csv)
    Diagnostic("applied", "client", "blocks the server applies this round (random k, server mode)"),
    Diagnostic("trains_all", "client", "FedTLU: clients train every block this round"),
    Diagnostic("warmup", "client", "FedTLU: a warm-up round (every block applied)"),
    Diagnostic(
        "budget", "client", "the client's budget (selective: blocks; tiny / lora_budget: device level)"
    ),
    Diagnostic("scores", "client", "selective: the client's block scores behind its selection"),
    Diagnostic("gal", "client", "FibecFed: global aggregation layers (shared LoRA)"),
    Diagnostic("pl", "client", "FibecFed: personal layers (LoRA kept on the client)"),
    Diagnostic("t", "client", "tiny: the suffix depth the client trains"),
    Diagnostic("arch", "client", "tiny: the model the client's device runs"),
    Diagnostic("sit_out", "client", "the client fits no budget and does not take part this round"),
    Diagnostic("memory_frac", "client", "tiny: the plan's peak memory / full fine-tuning's"),
    Diagnostic("memory_analytic_frac", "client", "tiny: the analytic peak memory / full fine-tuning's"),
    Diagnostic("memory_fit", "client", "tiny: which memory figure decided the fit (measured | analytic)"),
    Diagnostic("flops_frac", "client", "tiny: the plan's FLOPs per step / full fine-tuning's"),
    Diagnostic("upload_frac", "client", "tiny: the plan's upload / full fine-tuning's"),
    Diagnostic("rank", "client", "lora_budget: the LoRA rank that fits the budget"),
)
