"""``layerbench tune`` end to end: every (dataset, method) study, then the committed record.

The chosen lr is the best completed trial's; a method no trial could run (``CellNotRunnable``, e.g.
no LoRA rank fits the budget) keeps ``fl.lr`` so the grid still loads (its cells are skipped there too).
"""

from __future__ import annotations

import time
from pathlib import Path

import optuna
import pandas as pd
import yaml

from fl_core.config import ConfigError, GridConfig
from fl_core.tune import DEFAULT_LRS, TuneSpec, hardest_alpha, tune_one


def trial_rows(grid: GridConfig, dataset: str, label: str, spec: TuneSpec, study: optuna.Study) -> list[dict]:
    rows = []
    for t in study.get_trials(deepcopy=False):
        if t.state == optuna.trial.TrialState.FAIL and not t.user_attrs.get("reason"):
            continue  # a killed run, re-run on resume
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
            }
        )
    return rows


def choose(study: optuna.Study) -> float | None:
    done = study.get_trials(deepcopy=False, states=[optuna.trial.TrialState.COMPLETE])
    if not done:
        return None
    best = max(done, key=lambda t: (t.value, -t.params["lr"]))  # ties: the smaller lr
    return float(best.params["lr"])


def run_tune(
    grid: GridConfig,
    config_path: str,
    spec: TuneSpec,
    out: Path,
    storage: str | None = None,
    datasets: list[str] | None = None,
    methods: list[str] | None = None,
) -> Path:
    """Tune every (dataset, method without its own lr); write ``out`` (.yaml), its trials CSV and .md."""
    if grid.data.val_fraction <= 0:
        raise ConfigError("tune needs data.val_fraction > 0 in the grid (validation rows carved from train)")
    db = Path(grid.output_dir) / "tune" / f"{grid.name}.db"
    if storage is None:
        db.parent.mkdir(parents=True, exist_ok=True)
        storage = f"sqlite:///{db}"
    t0 = time.perf_counter()
    chosen: dict[str, dict[str, float]] = {}
    rows: list[dict] = []
    notes: list[str] = []
    for d in datasets or grid.datasets:
        for m in grid.methods:
            if m.lr is not None or (methods and m.display not in methods and m.name not in methods):
                continue
            study = tune_one(grid, storage, d, m, spec)
            rows += trial_rows(grid, d, m.display, spec, study)
            lr = choose(study)
            if lr is None:
                notes.append(f"{d}/{m.display}: no trial could run; keeps fl.lr = {grid.fl.lr:g}")
                lr = grid.fl.lr
            chosen.setdefault(d, {})[m.display] = lr
    out.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_csv(out.with_name(out.stem + "_trials.csv"), index=False)
    head = (
        f"# Written by `layerbench tune {config_path}` on validation rows only (data.val_fraction="
        f"{grid.data.val_fraction}); never edit by hand.\n"
    )
    doc = {
        "grid": grid.name,
        "alpha": spec.alpha,
        "seed": spec.seed,
        "lrs": list(spec.lrs),
        "objective": "mean validation accuracy of the last two evaluations; MedianPruner on per-round val accuracy",
        "wall_s_this_call": round(time.perf_counter() - t0, 1),
        "notes": notes,
        "chosen": chosen,
    }
    out.write_text(head + yaml.safe_dump(doc, sort_keys=False))
    out.with_suffix(".md").write_text(record_md(pd.DataFrame(rows), chosen))
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


def add_parser(sub) -> None:
    """The ``layerbench tune`` subcommand (registered by ``fl_core.cli``)."""
    t = sub.add_parser("tune", help="choose each method's lr per dataset on the validation split (Optuna)")
    t.add_argument("config")
    t.add_argument("--alpha", help="the alpha to tune at (default: the grid's smallest)")
    t.add_argument("--seed", type=int, help="default: the grid's first seed")
    t.add_argument(
        "--lrs", help="comma-separated lr grid (default: " + ",".join(f"{x:g}" for x in DEFAULT_LRS) + ")"
    )
    t.add_argument("--out", help="default: the grid's `tuned` path, else configs/tuned/<grid name>.yaml")
    t.add_argument("--storage", help="an Optuna storage URL (default: sqlite under <output_dir>/tune/)")
    t.add_argument("--dataset", action="append", help="only these datasets (repeatable)")
    t.add_argument("--method", action="append", help="only these method labels or names (repeatable)")
    t.set_defaults(fn=cmd_tune)


def cmd_tune(args) -> int:
    from fl_core.validate import load_grid

    raw_tuned = load_grid(args.config, {"tuned": None})
    grid_tuned = yaml.safe_load(Path(args.config).read_text()).get("tuned")
    alpha = (
        hardest_alpha(raw_tuned)
        if args.alpha is None
        else (args.alpha if args.alpha == "iid" else float(args.alpha))
    )
    lrs = tuple(float(x) for x in args.lrs.split(",")) if args.lrs else DEFAULT_LRS
    spec = TuneSpec(alpha=alpha, seed=raw_tuned.seeds[0] if args.seed is None else args.seed, lrs=lrs)
    out = Path(args.out or grid_tuned or f"configs/tuned/{raw_tuned.name}.yaml")
    path = run_tune(raw_tuned, args.config, spec, out, args.storage, args.dataset, args.method)
    print(f"tuned: {path} (trials: {path.with_name(path.stem + '_trials.csv')})")
    return 0
