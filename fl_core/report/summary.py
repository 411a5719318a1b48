"""The quick summary table: per dataset × alpha × method, final and best accuracy, mean ± std over
seeds, with costs, and every skipped/diverged/failed/missing cell shown with its reason (never a
blank). It reads the cells through :func:`fl_core.report.load.load_results` and summarizes them with
:func:`fl_core.report.stats.summarize`, as the report's tables do; it is written by every report and,
when a report fails, alone (``layerbench sweep``'s fallback)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from fl_core.config import GridConfig
from fl_core.metrics import ACCURACY, MACRO_F1, SUMMARY, final, personal
from fl_core.model_names import model_label
from fl_core.provenance import code_revision
from fl_core.report.load import Results, load_results
from fl_core.report.stats import summarize

KEYS = ["dataset", "alpha", "label"]
CELL_COLUMNS = ["dataset", "alpha", "label", "method", "seed", "status", "reason", "config_hash"]


def collect(res: Results) -> pd.DataFrame:
    """One row per cell of the grid (``res`` loaded with ``grid=``): who it is, its status and reason,
    and every summary number some cell recorded (NaN where a cell has none)."""
    c = res.cells
    numbers = [k for k in SUMMARY if k in c and np.isfinite(c[k].astype(float)).any()]
    return c[CELL_COLUMNS + numbers].reset_index(drop=True)


def _mean_std(x: pd.Series, scale: float = 1.0, digits: int = 1) -> str:
    s = summarize(x.astype(float) * scale)
    if not s.n:
        return "—"
    return f"{s.mean:.{digits}f} ± {s.std if s.n > 1 else 0.0:.{digits}f}"


def summary_table(cells: pd.DataFrame) -> pd.DataFrame:
    order = {lab: i for i, lab in enumerate(dict.fromkeys(cells["label"]))}
    out = []
    for (d, a, lab), g in cells.groupby(KEYS, sort=False):
        ok = g[g.status == "ok"]
        notes = "; ".join(
            f"seed {s}: {st}{' (' + str(r) + ')' if r else ''}"
            for s, st, r in zip(
                g.seed, g.status, g.get("reason", pd.Series([""] * len(g))).fillna(""), strict=True
            )
            if st != "ok"
        )
        row = {
            "dataset": d,
            "alpha": a,
            "method": lab,
            "seeds_ok": f"{len(ok)}/{len(g)}",
            "final_acc": _mean_std(ok.get(final(ACCURACY), pd.Series(dtype=float)), 100),
            "best_acc_test": _mean_std(ok.get("best_" + ACCURACY, pd.Series(dtype=float)), 100),
            "final_macro_f1": _mean_std(ok.get(final(MACRO_F1), pd.Series(dtype=float)), 100),
        }
        if final(personal(ACCURACY)) in ok:
            row["personal_acc"] = _mean_std(ok[final(personal(ACCURACY))], 100)
        row["client_TFLOPs"] = _mean_std(ok.get("client_flops", pd.Series(dtype=float)), 1e-12, 2)
        row["MB_up"] = _mean_std(ok.get("bytes_up", pd.Series(dtype=float)), 1e-6, 1)
        row["notes"] = notes
        row["_o"] = order[lab]
        out.append(row)
    t = pd.DataFrame(out)
    return t.sort_values(["dataset", "alpha", "_o"]).drop(columns="_o").reset_index(drop=True)


def _markdown(t: pd.DataFrame) -> str:
    cols = list(t.columns)
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for _, r in t.iterrows():
        lines.append("| " + " | ".join(str(r[c]).replace("|", "/") for c in cols) + " |")
    return "\n".join(lines)


def write_summary(
    grid: GridConfig, config_path: str | Path, root: str | Path | None = None, res: Results | None = None
) -> Path:
    """Write ``<output_dir>/summary_<grid>.{csv,md}`` and ``cells_<grid>.csv`` from ``res`` (the
    report's, loaded once), else from the store at ``root`` (default the grid's); returns the Markdown path."""
    cells = collect(res if res is not None else load_results(root or grid.output_dir, grid=grid))
    out = Path(grid.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    cells.to_csv(out / f"cells_{grid.name}.csv", index=False)
    t = summary_table(cells)
    t.to_csv(out / f"summary_{grid.name}.csv", index=False)
    header = [
        f"# Summary: grid `{grid.name}`",
        "",
        f"- produced by: `layerbench report {config_path}` (and after every `layerbench sweep` of it), "
        "from the grid's store alone: the same store gives the same bytes",
        f"- git revision of the report code: `{code_revision()}`; the full report (tables, figures, claims): "
        f"`layerbench report {config_path}`",
        f"- model: {model_label(grid.model)}; {grid.fl.rounds} rounds, {grid.fl.num_clients} clients, "
        f"{grid.fl.clients_per_round} per round, max_len {grid.fl.max_len}",
        "- accuracy in % on the global test split: `final_acc` "
        + (
            "at the last round"
            if grid.fl.final_window == 1
            else f"the mean of the last {grid.fl.final_window} evaluations"
        )
        + "; `best_acc_test` is the max over "
        "evaluated rounds on the same test split (optimistic, for reference only); mean ± std over seeds",
        "- `client_TFLOPs`: analytic client compute summed over all clients and rounds, extra passes included; "
        "`MB_up`: client → server bytes",
        "",
    ]
    if np.any(cells.status != "ok"):
        header.append("Cells that did not finish normally are listed in `notes` with the reason.\n")
    md = out / f"summary_{grid.name}.md"
    md.write_text("\n".join(header) + "\n" + _markdown(t) + "\n")
    return md
