"""Calibration table and cost estimate of configs/reference.yaml from a calibration store.

Reads the store of ``layerbench sweep configs/reference_calibration.yaml`` (``full`` vs
``centralized`` at alpha 1.0, one seed, evaluated every 3 rounds): the accuracy curve of each cell,
whether ``full`` has plateaued and reached 95% of ``centralized``, and each cell's wall and
training time. The grid estimate scales the measured ``full`` cell per method by that method's
training-time ratio to ``full`` on the committed default grid (``results/default/cells_default.csv``), keeps
the per-cell overhead (model load, evaluation) as measured, and multiplies by alphas × seeds; tuning
is methods × datasets × lrs cells at one alpha and one seed (no pruning assumed: an upper bound).
``--cpu-log`` (``time cputime done load`` lines sampled while the sweep ran) adds the process CPU
time per cell, whose half is a lower bound of a quiet 2-core machine's wall time.

    python benchmarks/reference_calibration.py --store /tmp/tune-calib --cpu-log /tmp/tune-calib-cpu.log
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd

from fl_core.validate import load_grid

# labels of configs/reference.yaml not in the default grid: the default-grid label whose ratio they take
SAME_AS = {
    "centralized": "full",  # the same optimizer steps on every block
    "rgn": "selective",  # gradient scoring pass, no MILP
    "snr": "selective",
    "tiny-0.75": "full",  # a deeper suffix than tiny-0.5: bounded by full
    "tiny-up-0.25": "tiny-0.5",
    "lora-0.75": "lora",
    "lora-up-0.25": "lora",
}


def cells(store: Path) -> pd.DataFrame:
    rows = []
    for d in sorted((store / "runs").iterdir()):
        res = json.loads((d / "result.json").read_text())
        r = pd.read_csv(d / "rounds.csv").dropna(subset=["accuracy"])
        rows.append(
            {
                "dataset": res["dataset"],
                "method": res["label"],
                "status": res["status"],
                "rounds": list(r["round"] + 1),
                "acc": list(r.accuracy),
                "val": list(r.get("val_accuracy", pd.Series(dtype=float))),
                "wall_s": res["info"]["wall_s"],
                "train_s": res["summary"]["client_wall_s"],
                "finished_at": res.get("finished_at", ""),
            }
        )
    return pd.DataFrame(rows)


def cpu_per_cell(log: Path) -> list[float]:
    """Process CPU seconds between cell completions (from the sampled ``ps`` log)."""
    out, last_cpu, last_done = [], 0.0, 0
    for line in log.read_text().splitlines():
        t, cpu, done, _ = line.split()
        parts = [float(x) for x in cpu.replace("-", ":").split(":")]
        sec = sum(p * 60**i for i, p in enumerate(reversed(parts)))
        if int(done) > last_done:
            out.append(sec - last_cpu)
            last_cpu, last_done = sec, int(done)
    return out


def curve_table(c: pd.DataFrame, cpu: list[float]) -> list[str]:
    rounds = c.rounds.iloc[0]
    lines = [
        "| dataset | method | "
        + " | ".join(f"r{r}" for r in rounds)
        + " | final val. | wall s | train s | CPU s |",
        "|" + "---|" * (len(rounds) + 6),
    ]
    for i, r in c.iterrows():
        accs = " | ".join(f"{100 * a:.1f}" for a in r.acc)
        val = f"{100 * r.val[-1]:.1f}" if r.val else "—"
        cs = f"{cpu[i]:.0f}" if i < len(cpu) else "—"
        lines.append(
            f"| {r.dataset} | {r.method} | {accs} | {val} | {r.wall_s:.0f} | {r.train_s:.0f} | {cs} |"
        )
    return lines


def verdicts(c: pd.DataFrame) -> list[str]:
    out = []
    for d, g in c.groupby("dataset", sort=False):
        f, z = g[g.method == "full"], g[g.method == "centralized"]
        if f.empty:
            continue
        a = f.acc.iloc[0]
        line = f"- {d}: full ends at {100 * a[-1]:.1f}%, last two evaluations {100 * abs(a[-1] - a[-2]):.1f} pp apart"
        if len(z):
            line += f"; centralized {100 * z.acc.iloc[0][-1]:.1f}%: full = {100 * a[-1] / z.acc.iloc[0][-1]:.1f}% of it"
        out.append(line + ".")
    return out


def estimate(grid_path: str, default_cells: Path, default_total_s: float, n_lrs: int = 5) -> list[str]:
    """Grid hours from the committed default grid's measured cells (same model, batch 16, 32 tokens)."""
    grid = load_grid(grid_path, {"tuned": None})
    dflt = pd.read_csv(default_cells)
    ok = dflt[dflt.status == "ok"]
    train = ok.groupby(["label", "alpha"]).client_wall_s.mean()
    full_steps = 6 * 3 * 3  # configs/default.yaml: rounds x clients_per_round x local_steps
    s_step = float(train["full", 1.0]) / full_steps  # alpha 1.0: every client takes all its steps
    ratio = ok.groupby("label").client_wall_s.mean() / ok[ok.label == "full"].client_wall_s.mean()
    overhead = (default_total_s - dflt.client_wall_s.sum()) / len(ok)  # load + 2 evaluations of 250 rows
    s_row = overhead / (2 * 250)  # upper bound: all of the overhead charged to evaluation
    fl = grid.fl
    steps = fl.rounds * fl.clients_per_round * (fl.local_steps or 1)
    n_eval = fl.rounds // fl.eval_every
    lines = [
        f"- default grid (`make bench`, {default_total_s / 60:.0f} min, {len(dflt)} cells): full trains at "
        f"{s_step:.2f} s per optimizer step (alpha 1.0); {overhead:.1f} s per cell besides training "
        f"(model load + evaluation; <= {1000 * s_row:.0f} ms per evaluated row)",
    ]
    total = 0.0
    for d in grid.datasets:
        rows = {"bbc_news": 445 + 178, "rotten_tomatoes": 1000 + 400}.get(d, 1000)  # test + val rows
        ev = n_eval * rows * s_row
        per = {
            m.display: steps * s_step * float(ratio.get(SAME_AS.get(m.display, m.display), 1.0)) + ev
            for m in grid.methods
        }
        sl = sum(per.values())
        total += sl * len(grid.alphas) * len(grid.seeds)
        lines.append(
            f"- {d}: full cell {per['full'] / 60:.1f} min ({steps} steps + {n_eval} evaluations of {rows} rows); "
            f"one (alpha, seed) slice of all {len(grid.methods)} methods {sl / 60:.0f} min"
        )
    tune = total / (len(grid.alphas) * len(grid.seeds)) * n_lrs
    lines += [
        f"- grid: {len(grid.cells())} cells, **{total / 3600:.1f} h** on 2 cores at fp32; tuning ({n_lrs} lrs x every "
        f"method x {len(grid.datasets)} datasets, 1 alpha, 1 seed, no pruning assumed) **{tune / 3600:.1f} h** "
        f"({100 * tune / total:.0f}% of the grid; the pruner and a shorter tuning run bring it down)",
        "- ratios per method: training time relative to full on the default grid; labels not in it take "
        + ", ".join(f"{k} = {v}" for k, v in SAME_AS.items()),
    ]
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--store", default="/tmp/tune-calib")
    ap.add_argument("--grid", default="configs/reference.yaml")
    ap.add_argument("--default-cells", default="results/default/cells_default.csv")
    ap.add_argument("--cpu-log")
    ap.add_argument(
        "--default-total-min", type=float, default=31.0, help="wall time of `make bench` (README)"
    )
    ap.add_argument("--out", default="configs/reference_calibration.md")
    ap.add_argument("--note", default="", help="a paragraph added after the calibration table")
    a = ap.parse_args()
    store = Path(a.store)
    c = cells(store) if (store / "runs").is_dir() else pd.DataFrame()
    c = c.sort_values("finished_at").reset_index(drop=True) if len(c) else c
    cpu = cpu_per_cell(Path(a.cpu_log)) if a.cpu_log else []
    calib = (
        [*curve_table(c, cpu), "", *verdicts(c)] if len(c) else [f"No finished calibration cell in {store}."]
    )
    md = [
        "# Calibration of configs/reference.yaml",
        "",
        "`full` vs `centralized` (one client, all training rows, the same optimizer steps), alpha 1.0, seed 0, "
        "lr 5e-5, 10 clients, 5 per round, 5 local steps, batch 16, 32 tokens, test accuracy (%) after each "
        "evaluated round (r = rounds done; 25 optimizer steps per round):",
        "",
        "```bash",
        "layerbench sweep configs/reference_calibration.yaml --no-progress   # store: /tmp/tune-calib",
        "python benchmarks/reference_calibration.py --store /tmp/tune-calib --cpu-log /tmp/tune-calib-cpu.log",
        "```",
        "",
        *calib,
        "",
        *([a.note, ""] if a.note else []),
        "## Cost estimate of the grid",
        "",
        *estimate(a.grid, Path(a.default_cells), 60 * a.default_total_min),
        "",
    ]
    Path(a.out).write_text("\n".join(md))
    print("\n".join(md))


if __name__ == "__main__":
    main()
