"""The report: tables, figures and paper claims from the local results store, and the store as pandas.

Entry points: :func:`build_report` (what ``layerbench report`` and the end of a sweep call),
:func:`load_results` (a store as pandas, for notebooks), :func:`write_report` (a report for already
loaded results). Imports are lazy, so ``from fl_core.report import load_results`` stays light (no torch).
"""

from __future__ import annotations

import importlib

_WHERE = {
    "build_report": "build",
    "report_dir": "publish",
    "write_report": "build",
    "evaluate_claims": "claims",
    "load_claims": "claims",
    "Results": "load",
    "load_results": "load",
    "paired_test": "stats",
    "summarize": "stats",
    "verdict": "stats",
    "log_report": "wandb_log",
}

__all__ = sorted(_WHERE)


def __getattr__(name: str):
    if name in _WHERE:
        return getattr(importlib.import_module(f"fl_core.report.{_WHERE[name]}"), name)
    raise AttributeError(f"module 'fl_core.report' has no attribute {name!r}")
