"""The report package is torch-free: it reads the store and draws, it never builds a model."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_report_imports_no_torch_or_transformers():
    code = (
        "import importlib, pkgutil, sys\n"
        "import fl_core.report as r\n"
        "for m in pkgutil.iter_modules(r.__path__):\n"
        "    importlib.import_module(f'fl_core.report.{m.name}')\n"
        "bad = sorted(k for k in ('torch', 'transformers') if k in sys.modules)\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True, timeout=120
    )
    assert out.stdout.strip() == "", f"fl_core.report loads {out.stdout.strip()}"


def test_torch_free_model_labels_match_the_registry():
    from fl_core.model_names import RANDOM_MODELS
    from fl_core.models import MODELS

    assert {n for n, e in MODELS.items() if e.random} == RANDOM_MODELS
