"""``layerbench tune`` end to end: every (dataset, method) study, then the committed record.

The chosen lr is the best completed trial's (where it sits on an edge of the lrs tried, the grid
grows past it: :func:`fl_core.tune.extension`); a method no trial could run (``CellNotRunnable``, e.g.
no LoRA rank fits the budget) keeps ``fl.lr`` so the grid still loads (its cells are skipped there too).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import optuna
import pandas as pd
import yaml

from fl_core.config import ConfigError, GridConfig
from fl_core.tune import TuneSpec, best_lr, extension, study_key, tune_one, was_killed


def trial_rows(
    grid: GridConfig, dataset: str, label: str, spec: TuneSpec, study: optuna.Study, key: str
) -> list[dict]:
    rows = []
    for t in study.get_trials(deepcopy=False):
        if was_killed(t):
            continue
        curve = t.user_attrs.get("curve", [])
        rows.append(
            {
                "grid": grid.name,
                "dataset": dataset,
                "alpha": spec.alpha,
                "seed": spec.seed,
                "method": label,
                "lr": t.params.get("lr"),
                "state": t.state.name.lower(),
                "value": t.value,
                "rounds": ";".join(str(r + 1) for r, _ in curve),
                "val_accuracy": ";".join(f"{a:.4f}" for _, a in curve),
                "reason": t.user_attrs.get("reason", ""),
                "wall_s": t.user_attrs.get("wall_s", float("nan")),
                "tune_key": key,
            }
        )
    return rows


def as_trials(rows: list[dict]) -> list[tuple[float, str, float | None]]:
    """(lr, state, value) of a record's trial rows, as :func:`fl_core.tune.extension` reads them."""
    return [(float(r["lr"]), r["state"], None if r["value"] != r["value"] else r["value"]) for r in rows]


@dataclass
class Record:
    """The committed record so far: trial rows and chosen lr per (dataset, method label)."""

    rows: dict[tuple[str, str], list[dict]] = field(default_factory=dict)
    chosen: dict[tuple[str, str], float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @classmethod
    def read(cls, out: Path, keys: dict[tuple[str, str], str]) -> Record:
        """The entries of an earlier record whose key is still current (the others are stale)."""
        rec, csv = cls(), _trials_path(out)
        if not (out.is_file() and csv.is_file()) or csv.stat().st_size == 0:
            return rec
        doc = yaml.safe_load(out.read_text()) or {}
        chosen = doc.get("chosen") or {}
        old = pd.read_csv(csv, keep_default_na=False, na_values=[""])
        if "tune_key" not in old:
            return rec
        for (d, lab), grp in old.groupby(["dataset", "method"]):
            if keys.get((d, lab)) == grp.tune_key.iloc[0] and lab in chosen.get(d, {}):
                rec.rows[(d, lab)] = grp.to_dict("records")
                rec.chosen[(d, lab)] = float(chosen[d][lab])
                rec.notes += [n for n in doc.get("notes") or [] if n.startswith(f"{d}/{lab}:")]
        return rec

    def write(self, out: Path, grid: GridConfig, config_path: str, spec: TuneSpec, wall_s: float) -> None:
        """Atomically rewrite the record: the grid's file, its trials CSV and its Markdown."""
        out.parent.mkdir(parents=True, exist_ok=True)
        rows = [r for k in sorted(self.rows) for r in self.rows[k]]
        chosen: dict[str, dict[str, float]] = {}
        for (d, lab), lr in sorted(self.chosen.items()):
            chosen.setdefault(d, {})[lab] = lr
        head = (
            f"# Written by `layerbench tune {config_path}` on validation rows only (data.val_fraction="
            f"{grid.data.val_fraction}); never edit by hand.\n"
        )
        doc = {
            "grid": grid.name,
            "alpha": spec.alpha,
            "seed": spec.seed,
            "lrs": list(spec.lrs),
            "max_extend": spec.max_extend,
            "objective": "mean validation accuracy of the last two evaluations; MedianPruner on per-round val "
            "accuracy; the lr grid grows one step past an edge where the best lr sits (at most max_extend)",
            "trial_wall_s": round(sum(_wall(r) for r in rows), 1),
            "wall_s_this_call": round(wall_s, 1),
            "notes": self.notes,
            "chosen": chosen,
        }
        _atomic(_trials_path(out), pd.DataFrame(rows).to_csv(index=False))
        _atomic(out.with_suffix(".md"), record_md(pd.DataFrame(rows), chosen))
        _atomic(out, head + yaml.safe_dump(doc, sort_keys=False))


def _wall(row: dict) -> float:
    w = row.get("wall_s")
    return float(w) if w is not None and w == w else 0.0


def _trials_path(out: Path) -> Path:
    return out.with_name(out.stem + "_trials.csv")


def _atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    tmp.replace(path)


def run_tune(
    grid: GridConfig,
    config_path: str,
    spec: TuneSpec,
    out: Path,
    storage: str | None = None,
    datasets: list[str] | None = None,
    methods: list[str] | None = None,
) -> Path:
    """Tune every (dataset, method without its own lr) not yet in a current record; the record
    (``out`` .yaml, its trials CSV and .md) is rewritten after each study, so a kill loses one study."""
    if grid.data.val_fraction <= 0:
        raise ConfigError("tune needs data.val_fraction > 0 in the grid (validation rows carved from train)")
    if storage is None:
        db = Path(grid.output_dir) / "tune" / f"{grid.name}.db"
        db.parent.mkdir(parents=True, exist_ok=True)
        storage = f"sqlite:///{db}"
    t0 = time.perf_counter()
    todo = [(d, m) for d in grid.datasets for m in grid.methods if m.lr is None]
    keys = {(d, m.display): study_key(grid, d, m, spec) for d, m in todo}
    rec = Record.read(out, keys)
    for d, m in todo:
        wanted = (not datasets or d in datasets) and (
            not methods or m.display in methods or m.name in methods
        )
        done = (d, m.display) in rec.chosen and extension(as_trials(rec.rows[(d, m.display)]), spec) is None
        if not wanted or done:
            continue
        study = tune_one(grid, storage, d, m, spec)
        rec.rows[(d, m.display)] = trial_rows(grid, d, m.display, spec, study, keys[(d, m.display)])
        lr = best_lr(as_trials(rec.rows[(d, m.display)]))
        if lr is None:
            rec.notes.append(f"{d}/{m.display}: no trial could run; keeps fl.lr = {grid.fl.lr:g}")
            lr = grid.fl.lr
        rec.chosen[(d, m.display)] = lr
        rec.write(out, grid, config_path, spec, time.perf_counter() - t0)
    rec.write(out, grid, config_path, spec, time.perf_counter() - t0)
    return out


def record_md(trials: pd.DataFrame, chosen: dict[str, dict[str, float]]) -> str:
    """Per (dataset, method): the chosen lr, every lr's objective (or pruned), the chosen lr's curve."""
    lines = [
        "# Tuned learning rates (validation split only)",
        "",
        "| dataset | method | chosen lr | objective per lr (p: pruned) | val. accuracy curve of the chosen lr |",
        "|---|---|---|---|---|",
    ]
    for d, per in chosen.items():
        for lab, lr in per.items():
            t = trials[(trials.dataset == d) & (trials.method == lab)] if len(trials) else trials
            cells = []
            for _, r in t.sort_values("lr").iterrows():
                v = "fail" if r.state == "fail" else f"{100 * r.value:.1f}" if r.value == r.value else "-"
                cells.append(f"{r.lr:g}: {v}{' (p)' if r.state == 'pruned' else ''}")
            best = t[(t.lr == lr) & (t.state == "complete")]
            curve = best.val_accuracy.iloc[0] if len(best) else ""
            lines.append(f"| {d} | {lab} | {lr:g} | {', '.join(cells)} | {curve} |")
    return "\n".join(lines) + "\n"
