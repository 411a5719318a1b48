"""Calibration table and measured cost of configs/reference_v1.yaml (v1; v2: configs/reference_calibration.md).

1. Convergence, from the store of ``layerbench sweep configs/reference_v1_calibration.yaml`` (``full`` vs
   ``centralized``, one seed, evaluated every 2 rounds past the grid's round count): each cell's test
   accuracy curve, and the rule at the grid's ``fl.rounds``: ``full`` at alpha 1.0 reaches 95% of
   ``centralized`` and its last two evaluations are within 1 pp.
2. Cost, measured: every (dataset, method) trial of ``layerbench tune`` is a whole cell of the grid's
   settings at one alpha and seed (validation rows instead of test rows), so the median wall time
   of a method's completed trials is its cell cost, their sum over methods one (alpha, seed) slice,
   and slices × alphas × seeds the grid. Tuning's own cost is the sum of its trials' wall times.

    python benchmarks/reference_calibration.py --store /tmp/calib-ref
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd

from fl_core.report.convergence import PLATEAU_PP, TARGET
from fl_core.validate import load_grid


def cells(store: Path) -> pd.DataFrame:
    rows = []
    for d in sorted((store / "runs").iterdir()):
        res = json.loads((d / "result.json").read_text())
        r = pd.read_csv(d / "rounds.csv").dropna(subset=["accuracy"])
        rows.append(
            {
                "dataset": res["dataset"],
                "alpha": str(res["alpha"]),
                "method": res["label"],
                "curve": dict(zip(r["round"] + 1, r.accuracy, strict=True)),  # rounds done -> accuracy
                "wall_s": res["info"]["wall_s"],
                "train_s": res["summary"]["client_wall_s"],
            }
        )
    return pd.DataFrame(rows).sort_values(["dataset", "alpha", "method"], ascending=[True, False, False])


def curve_table(c: pd.DataFrame) -> list[str]:
    rounds = sorted({r for cv in c.curve for r in cv if r > 0})
    lines = [
        "| dataset | alpha | method | " + " | ".join(f"r{r}" for r in rounds) + " | wall s | train s |",
        "|" + "---|" * (len(rounds) + 5),
    ]
    for _, r in c.iterrows():
        accs = " | ".join(f"{100 * r.curve[k]:.1f}" if k in r.curve else "" for k in rounds)
        lines.append(f"| {r.dataset} | {r.alpha} | {r.method} | {accs} | {r.wall_s:.0f} | {r.train_s:.0f} |")
    return lines


def rule(c: pd.DataFrame, rounds: int, every: int) -> list[str]:
    """The convergence rule at the grid's round count, per dataset, at alpha 1.0."""
    out = []
    for d, g in c[c.alpha == "1.0"].groupby("dataset"):
        f, z = g[g.method == "full"], g[g.method == "centralized"]
        if f.empty or z.empty or rounds not in f.curve.iloc[0]:
            continue
        a, b = f.curve.iloc[0], z.curve.iloc[0]
        last, prev, cen = a[rounds], a.get(rounds - every, float("nan")), b[rounds]
        ok = last >= TARGET * cen and abs(last - prev) * 100 <= PLATEAU_PP
        out.append(
            f"- {d}, alpha 1.0, after {rounds} rounds: full {100 * last:.1f}% = {100 * last / cen:.1f}% of "
            f"centralized ({100 * cen:.1f}%), {100 * abs(last - prev):.1f} pp from its previous evaluation: "
            f"**{'meets' if ok else 'fails'}** the rule (>= {100 * TARGET:g}% of centralized, <= {PLATEAU_PP:g} pp)."
        )
    return out


def cost(grid_path: str, trials_csv: Path) -> list[str]:
    """The grid's cost from the tuning trials (whole cells at the grid's settings), measured."""
    grid = load_grid(grid_path, {"tuned": None})
    if not trials_csv.is_file():
        return [f"No tuning record at {trials_csv} yet: the cost is measured from its trials."]
    t = pd.read_csv(trials_csv)
    done = t[t.state == "complete"]
    per = done.groupby(["dataset", "method"]).wall_s.median()
    n = len(grid.alphas) * len(grid.seeds)
    lines = [
        "| dataset | one (alpha, seed) slice, min | grid, h | most expensive cells (s) |",
        "|---|---|---|---|",
    ]
    total = 0.0
    for d in grid.datasets:
        if d not in per.index.get_level_values(0):
            continue
        s = per[d]
        total += s.sum() * n
        top = ", ".join(f"{m} {v:.0f}" for m, v in s.sort_values(ascending=False).head(4).items())
        lines.append(f"| {d} | {s.sum() / 60:.1f} | {s.sum() * n / 3600:.2f} | {top} |")
    tune = t.wall_s.sum()
    lines += [
        "",
        f"Grid ({len(grid.cells())} cells): **{total / 3600:.1f} h** on this machine; tuning "
        f"({len(t)} trials, {int((t.state == 'pruned').sum())} pruned): **{tune / 3600:.1f} h** = "
        f"{100 * tune / max(total, 1e-9):.0f}% of the grid; together {(total + tune) / 3600:.1f} h.",
    ]
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--store", default="/tmp/calib-ref")
    ap.add_argument("--grid", default="configs/reference_v1.yaml")
    ap.add_argument("--calibration", default="configs/reference_v1_calibration.yaml")
    ap.add_argument("--trials", default="configs/tuned/reference_v1_trials.csv")
    ap.add_argument("--out", default="configs/reference_v1_calibration.md")
    ap.add_argument("--note", default="", help="a paragraph added after the calibration table")
    a = ap.parse_args()
    grid, calib = load_grid(a.grid, {"tuned": None}), load_grid(a.calibration)
    c = cells(Path(a.store))
    md = [
        "# Calibration of configs/reference_v1.yaml",
        "",
        f"`full` vs `centralized` (one client, all training rows, the same optimizer steps), seed 0, lr "
        f"{calib.fl.lr:g}, {calib.fl.num_clients} clients, {calib.fl.clients_per_round} per round, "
        f"{calib.fl.local_steps} local steps, batch {calib.fl.batch_size}, {calib.fl.max_len} tokens, "
        f"{calib.fl.precision}; test accuracy (%) after r rounds:",
        "",
        "```bash",
        f"layerbench sweep {a.calibration} --no-progress   # store: {calib.output_dir}",
        f"python benchmarks/reference_calibration.py --store {calib.output_dir}",
        "```",
        "",
        *curve_table(c),
        "",
        f"The grid runs {grid.fl.rounds} rounds, evaluated every {grid.fl.eval_every}:",
        "",
        *rule(c, grid.fl.rounds, grid.fl.eval_every),
        "",
        *([a.note, ""] if a.note else []),
        "## Cost of the grid, measured",
        "",
        *cost(a.grid, Path(a.trials)),
        "",
    ]
    Path(a.out).write_text("\n".join(md))
    print("\n".join(md))


if __name__ == "__main__":
    main()
