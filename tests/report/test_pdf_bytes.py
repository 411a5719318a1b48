"""A figure's PDF is the same bytes in every process: matplotlib's font-subset tag came from Python's
salted ``hash`` (a fresh clone's rebuild changed every committed PDF), ours from the glyphs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CODE = (
    "import sys, matplotlib; matplotlib.use('Agg'); import matplotlib.pyplot as plt; "
    "from pathlib import Path; from fl_core.report.style import save; "
    "fig, ax = plt.subplots(); ax.plot([0, 1], [1, 0]); ax.set_title('accuracy per round (α = 0.5)'); "
    "save(fig, Path(sys.argv[1]))"
)


def test_the_same_figure_is_the_same_pdf_in_another_process(tmp_path):
    out = []
    for seed in ("1", "2"):
        stem = tmp_path / f"f{seed}"
        env = {**os.environ, "PYTHONHASHSEED": seed, "MPLBACKEND": "Agg"}
        subprocess.run([sys.executable, "-c", CODE, str(stem)], cwd=ROOT, env=env, check=True)
        out.append(stem.with_suffix(".pdf").read_bytes())
    assert b"+DejaVuSans" in out[0]  # a font subset is embedded, so the tag is exercised
    assert out[0] == out[1]
