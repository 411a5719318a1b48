"""The report's "learning rates" section: per (dataset, method) the lr ``layerbench tune`` chose on
validation rows, every lr's objective, the validation curves it came from, and tuning's share of
the grid's compute (issue 11: at most about 25 %).

Reads only the committed tuning record (``configs/tuned/<grid>.yaml`` and its ``_trials.csv``);
draws into ``<report>/tuning/`` (its own folder: the report rebuilds ``tables/`` and ``figures/``).
"""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import yaml  # noqa: E402

from fl_core.report.style import RC, save  # noqa: E402


def _curve(row: pd.Series) -> tuple[list[int], list[float]]:
    if not isinstance(row.rounds, str) or not row.rounds:
        return [], []
    return [int(r) for r in row.rounds.split(";")], [100 * float(a) for a in row.val_accuracy.split(";")]


def draw_curves(trials: pd.DataFrame, chosen: dict[str, float], dataset: str, out: Path) -> list[Path]:
    """One small panel per method: validation accuracy per round for every lr; the chosen one bold."""
    t = trials[trials.dataset == dataset]
    methods = list(dict.fromkeys(t.method))
    cols = min(6, len(methods))
    rows = math.ceil(len(methods) / cols)
    lrs = sorted(t.lr.dropna().unique())
    with plt.rc_context(RC):
        fig, axes = plt.subplots(
            rows, cols, figsize=(2.1 * cols, 1.7 * rows + 0.5), sharey=True, squeeze=False
        )
        for ax, m in zip(axes.flat, methods, strict=False):
            for _, r in t[t.method == m].sort_values("lr").iterrows():
                x, y = _curve(r)
                best = r.lr == chosen.get(m)
                shade = str(0.15 + 0.6 * lrs.index(r.lr) / max(1, len(lrs) - 1))
                ax.plot(
                    x,
                    y,
                    color="#c0392b" if best else shade,
                    lw=2.2 if best else 0.9,
                    ls="-" if r.state == "complete" else ":",
                    label=f"{r.lr:g}",
                )
            ax.set_title(m)
            ax.grid(alpha=0.3)
        for ax in list(axes.flat)[len(methods) :]:
            ax.axis("off")
        fig.supxlabel("round")
        fig.supylabel("validation accuracy (%)")
        fig.suptitle(f"{dataset}: tuning curves per lr (bold red: chosen; dotted: pruned)")
        fig.tight_layout()
        paths = save(fig, out / f"tuning_{dataset}")
        plt.close(fig)
    return paths


def unfinished_edges(doc: dict, trials: pd.DataFrame) -> list[str]:
    """A bullet per (dataset, method) whose chosen lr sits on an edge of the lrs tried while the tuner's
    own rule (``fl_core.tune.extension``, ``max_extend`` steps past an edge) still has a step to try."""
    from fl_core.tune import TuneSpec, extension
    from fl_core.tune_record import as_trials

    spec = TuneSpec(alpha=doc["alpha"], seed=doc["seed"], lrs=doc["lrs"], max_extend=doc.get("max_extend", 0))
    out = []
    for d, per in doc["chosen"].items():
        for m, lr in per.items():
            t = trials[(trials.dataset == d) & (trials.method == m)]
            nxt = extension(as_trials(t.to_dict("records")), spec)
            if nxt is not None:
                out.append(
                    f"- **{d}/{m}: tuning unfinished.** The chosen lr {lr:g} is on the edge of the lrs tried, "
                    f"and the next step past it ({nxt:g}) was never tried: the record predates the rule or "
                    "its run stopped. `make tune` tries it; the cells rerun if the choice changes."
                )
    return [*out, ""] if out else []


def tuning_section(tuned: str | Path | None, out: Path, grid_wall_s: float) -> list[str]:
    """README lines (and ``out/tuning/`` files) for the grid's tuning record, or why there is none."""
    lines = ["## Learning rates (tuned on the validation split)", ""]
    if not tuned:
        return lines + ["No `tuned:` file in the grid: every method uses `fl.lr` (or its own `lr`).", ""]
    path, csv = Path(tuned), Path(tuned).with_name(Path(tuned).stem + "_trials.csv")
    if not (path.is_file() and csv.is_file()):
        return lines + [f"The tuning record `{path.as_posix()}` is missing: run `make tune` first.", ""]
    doc = yaml.safe_load(path.read_text())
    trials = pd.read_csv(csv, keep_default_na=False, na_values=[""])
    tune_s = float(trials.wall_s.fillna(0).sum()) if "wall_s" in trials else float("nan")
    share = f"{100 * tune_s / grid_wall_s:.0f} %" if grid_wall_s > 0 and tune_s == tune_s else "n/a"
    lines += [
        f"From `{path.as_posix()}` (`layerbench tune`, alpha {doc['alpha']}, seed {doc['seed']}, lrs "
        f"{', '.join(f'{x:g}' for x in doc['lrs'])}; objective: {doc['objective']}). Test rows are never read.",
        "",
        f"- tuning compute: {tune_s / 3600:.2f} h of trial cells = {share} of this grid's "
        f"{grid_wall_s / 3600:.2f} h of cell wall time",
        "",
        "| dataset | method | chosen lr | objective per lr (val. %, p: pruned) |",
        "|---|---|---|---|",
    ]
    for d, per in doc["chosen"].items():
        for m, lr in per.items():
            t = trials[(trials.dataset == d) & (trials.method == m)].sort_values("lr")
            objs = [
                f"{r.lr:g}: {100 * r.value:.1f}" + (" (p)" if r.state == "pruned" else "")
                if r.value == r.value
                else f"{r.lr:g}: {r.state}"
                for _, r in t.iterrows()
            ]
            lines.append(f"| {d} | {m} | {lr:g} | {', '.join(objs)} |")
    lines.append("")
    lines += unfinished_edges(doc, trials)
    for d in doc["chosen"]:
        pngs = [p for p in draw_curves(trials, doc["chosen"][d], d, out / "tuning") if p.suffix == ".png"]
        lines += [f"![tuning_{d}](tuning/{p.name})" for p in pngs] + [""]
    for note in doc.get("notes") or []:
        lines.append(f"- {note}")
    return lines
