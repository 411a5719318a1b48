"""A figure's PDF is the same bytes in every process: matplotlib's font-subset tag came from Python's
salted ``hash`` (a fresh clone's rebuild changed every committed PDF), ours from the glyphs. The CD
diagram (autorank's drawing) goes through the same ``save`` as every other panel."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
STORE = ROOT / "tests" / "report" / "fixtures" / "store"
CODE = (
    "import sys, matplotlib; matplotlib.use('Agg'); import matplotlib.pyplot as plt; "
    "from pathlib import Path; from fl_core.report.style import save; "
    "fig, ax = plt.subplots(); ax.plot([0, 1], [1, 0]); ax.set_title('accuracy per round (α = 0.5)'); "
    "save(fig, Path(sys.argv[1]))"
)

CD = (
    "import sys; from pathlib import Path; from fl_core.report.load import load_results; "
    "from fl_core.report.gallery import PANELS, Inputs; "
    "PANELS['cd'].draw(Inputs(load_results(Path(sys.argv[2])), Path(sys.argv[1])))"
)


def _in_two_processes(code: str, tmp_path: Path, *args: str) -> list[Path]:
    """Runs ``code`` once per ``PYTHONHASHSEED``; the path each run got as its first argument."""
    out = []
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed, "MPLBACKEND": "Agg"}
        path = tmp_path / f"seed{seed}"
        subprocess.run([sys.executable, "-c", code, str(path), *args], cwd=ROOT, env=env, check=True)
        out.append(path)
    return out


def test_the_same_figure_is_the_same_pdf_in_another_process(tmp_path):
    a, b = (d.with_suffix(".pdf").read_bytes() for d in _in_two_processes(CODE, tmp_path))
    assert b"+DejaVuSans" in a  # a font subset is embedded, so the tag is exercised
    assert a == b


def test_the_cd_diagram_is_the_same_pdf_in_another_process(tmp_path):
    a, b = (d / "figures" / "cd_final_accuracy.pdf" for d in _in_two_processes(CD, tmp_path, str(STORE)))
    assert b"+DejaVuSans" in a.read_bytes()
    assert a.read_bytes() == b.read_bytes()
    assert a.with_suffix(".png").read_bytes() == b.with_suffix(".png").read_bytes()
