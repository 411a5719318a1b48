"""The metric vocabulary: every name a cell records, its direction and how it is displayed.

Bottom of the package (imports nothing from ``fl_core`` and no torch), so the evaluator, the cell
summary and the report all read the same names from here instead of spelling them out.

- :data:`EVAL`: what one evaluation of a model returns (a row of ``rounds.csv``; the personalized
  evaluation writes the same names with the ``personal_`` prefix);
- :data:`SUMMARY`: the headline numbers of one cell (``result.json``'s ``summary``), each with its
  direction (higher is better?), for the report's tables and paired claims.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Metric:
    """``name``: the key in the store; ``higher``: is a larger value better? ``display``: a short axis
    or column label; ``scale``: factor for display (100 for a share shown in %); ``claimable``: may a
    paired claim test it (not the optimistic ``best_accuracy`` nor bookkeeping like ``rounds_run``)."""

    name: str
    higher: bool
    display: str
    scale: float = 1.0
    claimable: bool = True


ACCURACY, MACRO_F1, LOSS = "accuracy", "macro_f1", "loss"
PERPLEXITY, TOKEN_ACCURACY = "perplexity", "token_accuracy"  # language modeling
PERSONAL = "personal_"

#: one evaluation (global test split; ``personal_`` + name on the clients' own test splits)
EVAL: dict[str, Metric] = {
    m.name: m
    for m in (
        Metric(ACCURACY, True, "accuracy (%)", 100.0),
        Metric(MACRO_F1, True, "macro-F1 (%)", 100.0),
        Metric(LOSS, False, "loss"),
        Metric(PERPLEXITY, False, "perplexity"),
        Metric(TOKEN_ACCURACY, True, "next-token accuracy (%)", 100.0),
    )
}

#: per-cell summary fields, in the report's column order (NaN where a cell did not record one)
SUMMARY: dict[str, Metric] = {
    m.name: m
    for m in (
        Metric("final_accuracy", True, "final accuracy (%)", 100.0),
        Metric("final_macro_f1", True, "final macro-F1 (%)", 100.0),
        Metric("best_accuracy", True, "best accuracy (%)", 100.0, claimable=False),
        Metric("final_loss", False, "final loss", claimable=False),
        Metric("final_personal_accuracy", True, "final personalized accuracy (%)", 100.0),
        Metric("final_personal_macro_f1", True, "final personalized macro-F1 (%)", 100.0),
        Metric("final_perplexity", False, "final perplexity"),
        Metric("final_token_accuracy", True, "final next-token accuracy (%)", 100.0),
        Metric("best_perplexity", False, "best perplexity", claimable=False),
        Metric("final_personal_perplexity", False, "final personalized perplexity"),
        Metric("final_personal_token_accuracy", True, "final personalized next-token accuracy (%)", 100.0),
        Metric("client_flops", False, "client FLOPs"),
        Metric("bytes_up", False, "bytes uploaded (client → server)"),
        Metric("bytes_down", False, "bytes downloaded (server → client)"),
        Metric("extra_pass_flops", False, "extra-pass FLOPs"),
        Metric("client_wall_s", False, "client wall time (s)", claimable=False),
        Metric("rounds_run", True, "rounds run", claimable=False),
    )
}

#: computed by the report rather than stored in the summary
DERIVED: dict[str, Metric] = {
    m.name: m
    for m in (
        Metric("acc_at_val_round", True, "accuracy at the val.-selected round (%)", 100.0),
        Metric("peak_memory_bytes", False, "peak client memory (bytes)"),
    )
}


def final(name: str) -> str:
    """The summary key of an evaluation metric at the last evaluated round (``final_accuracy``)."""
    return f"final_{name}"


def personal(name: str) -> str:
    """The key of an evaluation metric on the clients' own test splits (``personal_accuracy``)."""
    return f"{PERSONAL}{name}"


#: metric → higher is better?, for the metrics a paired claim may test (summary fields, then derived)
CLAIMABLE: dict[str, bool] = {k: m.higher for k, m in {**SUMMARY, **DERIVED}.items() if m.claimable}


def higher_is_better(name: str) -> bool:
    """Direction of a summary or derived metric; ``KeyError`` for an unknown name."""
    return {**SUMMARY, **DERIVED}[name].higher


#: the headline metric of a task: what tables and the headline rank methods by
PRIMARY: dict[str, str] = {"classify": final(ACCURACY), "lm": final(PERPLEXITY)}
