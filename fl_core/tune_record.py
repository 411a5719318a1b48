"""``layerbench tune`` end to end: every (dataset, partition, method) over its seeds, then the record.

Per group, one study per tuning seed over the same lrs; the choice is :func:`fl_core.tune_choice.choose`
on the per-lr means over the seeds (the tie rule, :data:`~fl_core.tune_choice.TIE_RULE`); while the
winner or the choice sits on an edge of the lrs tried, every seed tries one more lr past it
(:func:`~fl_core.tune_choice.extension`). A group no trial could run (``CellNotRunnable``, e.g. no LoRA
rank fits the budget) keeps ``fl.lr`` so the grid still loads (its cells are skipped there too).

The record (committed): ``<out>.yaml`` (``chosen: {dataset: {partition: {label: lr}}}`` and ``ties``),
``<out>_trials.csv`` (every trial) and ``<out>.md``; rewritten after each group, and with the finished
trials of the groups in flight (``in_progress``) every ``CHECKPOINT_S`` and when a run stops, it is
the resume point across machines: a group whose rows carry its current ``tune_key`` is not tuned
again, and a group stopped midway repeats none of its recorded trials (they are put into its new
studies, :func:`fl_core.tune.add_recorded`).
"""

from __future__ import annotations

import logging
import multiprocessing
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path

import optuna
import pandas as pd
import yaml

from fl_core.config import ConfigError, GridConfig, per_partition
from fl_core.tune import (
    Group,
    TuneSpec,
    groups,
    objective_window,
    prune_from,
    run_study,
    same_runs,
    study_key,
    study_name,
    was_killed,
)
from fl_core.tune_choice import (
    TIE_RULE,
    Choice,
    LrStat,
    aggregate,
    as_trials,
    choose,
    extension,
    format_stats,
)

log = logging.getLogger(__name__)
CHECKPOINT_S = 300.0  # how often a parallel run records the finished trials of groups in flight
Key = tuple[str, str, str]  # (dataset, partition key, method label)


def trial_rows(grid: GridConfig, group: Group, seed: int, study: optuna.Study, key: str) -> list[dict]:
    rows = []
    for t in study.get_trials(deepcopy=False):
        if was_killed(t) or not t.state.is_finished():  # stopped, or queued / running in another process
            continue
        curve = t.user_attrs.get("curve", [])
        d, part, label = group.key
        rows.append(
            {
                "grid": grid.name,
                "dataset": d,
                "alpha": part,
                "seed": seed,
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


@dataclass
class Record:
    """The committed record so far: trial rows, the choice and its ties per group key."""

    rows: dict[Key, list[dict]] = field(default_factory=dict)
    chosen: dict[Key, float] = field(default_factory=dict)
    ties: dict[Key, list[float]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    partial: dict[Key, list[dict]] = field(default_factory=dict)  # trials of groups not finished yet

    @classmethod
    def read(cls, out: Path, keys: dict[Key, str]) -> Record:
        """The groups of an earlier record whose key is still current (the others are stale)."""
        rec, csv = cls(), trials_path(out)
        if not (out.is_file() and csv.is_file()) or not csv.read_text().strip():
            return rec  # none, or written before any trial finished
        doc = yaml.safe_load(out.read_text()) or {}
        old = pd.read_csv(csv, keep_default_na=False, na_values=[""], dtype={"alpha": str})
        if "tune_key" not in old or "alpha" not in old:
            return rec
        for (d, part, lab), grp in old.groupby(["dataset", "alpha", "method"]):
            entry = (doc.get("chosen") or {}).get(d) or {}
            lr = (entry.get(part) or {}).get(lab) if per_partition(entry) else None
            if keys.get((d, part, lab)) == grp.tune_key.iloc[0] and lr is None:
                rec.partial[(d, part, lab)] = grp.to_dict("records")  # in flight when it was written
            elif keys.get((d, part, lab)) == grp.tune_key.iloc[0]:
                k = (d, part, lab)
                rec.rows[k], rec.chosen[k] = grp.to_dict("records"), float(lr)
                rec.ties[k] = list(((doc.get("ties") or {}).get(d) or {}).get(part, {}).get(lab) or [])
                rec.notes += [n for n in doc.get("notes") or [] if n.startswith(f"{d}/{part}/{lab}:")]
        return rec

    def write(self, out: Path, grid: GridConfig, config_path: str, spec: TuneSpec, wall_s: float) -> None:
        """Atomically rewrite the record: the grid's file, its trials CSV and its Markdown."""
        out.parent.mkdir(parents=True, exist_ok=True)
        rows = [r for k in sorted(self.rows) for r in self.rows[k]]
        doc = record_doc(self, grid, spec, rows, wall_s)
        if partial := {k: v for k, v in self.partial.items() if v and k not in self.chosen}:
            doc["in_progress"] = _nest({k: len(v) for k, v in partial.items()})  # trials kept for a resume
            rows += [r for k in sorted(partial) for r in partial[k]]
        head = (
            f"# Written by `layerbench tune {config_path}` on validation rows only (data.val_fraction="
            f"{grid.data.val_fraction}); never edit by hand.\n# Tie rule: {TIE_RULE}.\n"
        )
        _atomic(trials_path(out), pd.DataFrame(rows).to_csv(index=False))
        _atomic(out.with_suffix(".md"), record_md(pd.DataFrame(rows), doc))
        _atomic(out, head + yaml.safe_dump(doc, sort_keys=False, width=100))


def _nest(flat: dict[Key, object]) -> dict[str, dict[str, dict[str, object]]]:
    out: dict[str, dict[str, dict[str, object]]] = {}
    for (d, part, lab), v in sorted(flat.items()):
        out.setdefault(d, {}).setdefault(part, {})[lab] = v
    return out


def record_doc(rec: Record, grid: GridConfig, spec: TuneSpec, rows: list[dict], wall_s: float) -> dict:
    """The YAML record: how the lrs were chosen, what tuning cost, ``ties`` and ``chosen``."""
    prune = f"MedianPruner from round index {prune_from(grid.fl.rounds)} of {grid.fl.rounds} (second half)"
    return {
        "grid": grid.name,
        "format": 2,
        "tie_rule": TIE_RULE,
        "seeds": list(spec.seeds),
        "partitions": sorted({k[1] for k in rec.chosen}),
        "lrs": list(spec.lrs),
        "centered": bool(spec.center),
        **({"start_lrs": _nest({k: list(spec.lrs_at(*k)) for k in rec.chosen})} if spec.center else {}),
        "max_extend": spec.max_extend,
        "objective": f"{objective_text(grid)}; {prune if spec.prune else 'no pruning'}; the lr grid grows one step "
        "past an edge holding the winner or the chosen lr (at most max_extend)",
        "trial_wall_s": round(sum(_wall(r) for r in rows), 1),
        "wall_s_this_call": round(wall_s, 1),
        "notes": rec.notes,
        "ties": _nest({k: v for k, v in rec.ties.items() if len(v) > 1}),
        "chosen": _nest(rec.chosen),
    }


def objective_text(grid: GridConfig) -> str:
    n = objective_window(grid)
    return f"mean validation accuracy of the last {'two' if n == 2 else n} evaluations"


def _wall(row: dict) -> float:
    w = row.get("wall_s")
    return float(w) if w is not None and w == w else 0.0


def trials_path(out: Path) -> Path:
    return out.with_name(out.stem + "_trials.csv")


def _atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    tmp.replace(path)


def tune_group(
    grid: GridConfig, storage: str, group: Group, spec: TuneSpec, key: str, recorded: list[dict] = ()
) -> list[dict]:
    """Every seed's study over the group's lrs, grown past an edge while :func:`extension` says so;
    ``recorded``: the group's trials in a committed record (a run stopped mid-group), not repeated."""
    base = spec.lrs_for(group)
    lrs = list(base)
    while True:
        rows = []
        for s in spec.seeds:
            mine = [r for r in recorded if int(r["seed"]) == s]
            rows += trial_rows(grid, group, s, run_study(grid, storage, group, s, lrs, spec, mine), key)
        more = extension(aggregate(as_trials(rows), spec.seeds), base, spec.max_extend)
        if more is None:
            return rows
        lrs.append(more)


def group_choice(rows: list[dict], spec: TuneSpec) -> tuple[list[LrStat], Choice]:
    stats = aggregate(as_trials(rows), spec.seeds)
    return stats, choose(stats)


def run_tune(
    grid: GridConfig,
    config_path: str,
    spec: TuneSpec,
    out: Path,
    storage: str | None = None,
    datasets: list[str] | None = None,
    methods: list[str] | None = None,
    jobs: int = 1,
) -> Path:
    """Tune every group not yet in a current record; the record (``out`` .yaml, its trials CSV and
    .md) is rewritten after each group and every ``CHECKPOINT_S`` (with the finished trials of the
    groups in flight), so a kill loses at most the trials running and the last few minutes. ``jobs`` > 1
    tunes that many groups at once in worker processes (each with ``threads_per_cell`` threads);
    only this process writes the record."""
    _check(grid, spec)
    storage = storage or _default_storage(grid)
    t0 = time.perf_counter()
    todo = groups(grid, spec)
    keys = {g.key: study_key(grid, g, spec) for g in todo}
    dups = same_runs(grid, todo, spec)
    rec = Record.read(out, keys)
    finished: list[Key] = []

    def finish(g: Group, rows: list[dict]) -> None:
        rec.rows[g.key] = rows
        _, choice = group_choice(rows, spec)
        rec.notes = [n for n in rec.notes if not n.startswith(f"{g.name}:")]
        if choice.lr is None:
            rec.notes.append(f"{g.name}: no lr completed on every seed; keeps fl.lr = {grid.fl.lr:g}")
        rec.chosen[g.key] = grid.fl.lr if choice.lr is None else choice.lr
        rec.ties[g.key] = list(choice.ties)
        _copy_all(rec, todo, dups)
        rec.write(out, grid, config_path, spec, time.perf_counter() - t0)
        finished.append(g.key)
        done = (
            f"{len(finished)} of {len(pending)} groups done, {(time.perf_counter() - t0) / 3600:.1f} h wall"
        )
        log.info("tuned %s: lr %g (%d trials); %s", g.name, rec.chosen[g.key], len(rows), done)

    pending = [g for g in todo if g.key not in dups and _wanted(g, rec, spec, datasets, methods)]
    log.info("tune: %d groups to tune, %d job(s) at a time", len(pending), max(1, jobs))
    recorded = {g.key: rec.partial.get(g.key, []) for g in pending}

    def checkpoint() -> None:
        for g in pending:
            if g.key not in rec.chosen:
                rows = inflight_rows(grid, storage, g, spec, keys[g.key], recorded[g.key])
                rec.partial[g.key] = rows
        _copy_all(rec, todo, dups)
        rec.write(out, grid, config_path, spec, time.perf_counter() - t0)

    _tune_groups(grid, storage, spec, [(g, keys[g.key]) for g in pending], jobs, finish, recorded, checkpoint)
    _copy_all(rec, todo, dups)
    rec.write(out, grid, config_path, spec, time.perf_counter() - t0)
    return out


def _check(grid: GridConfig, spec: TuneSpec) -> None:
    """Refuse a tune call that could not choose anything, before any trial runs."""
    if grid.data.val_fraction <= 0:
        raise ConfigError("tune needs data.val_fraction > 0 in the grid (validation rows carved from train)")
    if len(spec.seeds) < 2:
        raise ConfigError(
            f"tune needs >= 2 seeds (the tie rule needs a standard error), got {list(spec.seeds)}"
        )


def _wanted(
    g: Group, rec: Record, spec: TuneSpec, datasets: list[str] | None, methods: list[str] | None
) -> bool:
    """Is ``g`` selected (``--dataset`` / ``--method``) and not finished in the record (its choice
    made and no edge extension due)?"""
    if datasets and g.dataset not in datasets:
        return False
    if methods and g.method.display not in methods and g.method.name not in methods:
        return False
    stats = aggregate(as_trials(rec.rows.get(g.key, [])), spec.seeds)
    return not (g.key in rec.chosen and extension(stats, spec.lrs_for(g), spec.max_extend) is None)


def _tune_groups(
    grid: GridConfig,
    storage: str,
    spec: TuneSpec,
    todo: list[tuple[Group, str]],
    jobs: int,
    finish: Callable,
    recorded: dict[Key, list[dict]],
    checkpoint: Callable[[], None],
) -> None:
    """Tune each (group, study key) of ``todo``, calling ``finish(group, rows)`` in this process as
    each completes: one at a time here, or ``jobs`` at once in worker processes. ``checkpoint()``
    records the finished trials of unfinished groups: every ``CHECKPOINT_S`` and when stopped."""
    if jobs <= 1 or len(todo) <= 1:
        _set_threads(grid.threads_per_cell)
        try:
            for g, key in todo:
                finish(g, tune_group(grid, storage, g, spec, key, recorded.get(g.key, [])))
        finally:
            checkpoint()
        return
    # A process per group in flight (a kept library: concurrent.futures); spawn, not fork, since a
    # forked torch runtime is unsafe. Optuna's SQLite storage serializes the workers' writes once its
    # schema exists: created here first, or two workers race to create it.
    optuna.storages.get_storage(storage)
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(
        jobs, mp_context=ctx, initializer=_set_threads, initargs=(grid.threads_per_cell,)
    ) as pool:
        futures = {
            pool.submit(tune_group, grid, storage, g, spec, key, recorded.get(g.key, [])): g
            for g, key in todo
        }
        try:
            while futures:
                done, _ = wait(futures, timeout=CHECKPOINT_S, return_when=FIRST_COMPLETED)
                collect(done, futures, finish)
                checkpoint()
        finally:
            checkpoint()


def collect(done, futures: dict, finish: Callable) -> None:
    """``finish(group, rows)`` for each finished future of ``done`` (popped from ``futures``); a group
    whose worker raised is logged and skipped, so one failure does not stop the others."""
    for f in done:
        g = futures.pop(f)
        try:
            rows = f.result()
        except Exception:  # noqa: BLE001
            log.exception("tuning %s failed; the other groups go on (re-run tune for it)", g.name)
            continue
        finish(g, rows)


def inflight_rows(
    grid: GridConfig, storage: str, group: Group, spec: TuneSpec, key: str, recorded: list[dict]
) -> list[dict]:
    """The finished trials of a group not finished yet, per seed: its study's (this run's storage), or
    those an earlier record kept where this run has not opened the seed's study."""
    out = []
    for s in spec.seeds:
        try:
            study = optuna.load_study(study_name=study_name(grid, group, s, spec), storage=storage)
        except KeyError:  # not started here
            out += [r for r in recorded if int(r["seed"]) == s]
            continue
        out += [
            r for r in trial_rows(grid, group, s, study, key) if r["state"] in ("complete", "pruned", "fail")
        ]
    return out


def _set_threads(threads: int | None) -> None:
    """One trial's torch threads: the grid's ``threads_per_cell`` (as its cells run), else torch's default."""
    if threads:
        import torch

        torch.set_num_threads(threads)


def _copy_all(rec: Record, todo: list[Group], dups: dict[Key, Group]) -> None:
    """Every group that is the same runs as an earlier one takes that one's choice (where made)."""
    for d, first in dups.items():
        _copy(rec, next(x for x in todo if x.key == d), first)


def _copy(rec: Record, g: Group, first: Group) -> None:
    """A group whose trials are the same runs as ``first``'s: its choice, no trial of its own."""
    rec.rows.pop(g.key, None)
    if first.key not in rec.chosen:
        return
    rec.chosen[g.key], rec.ties[g.key] = rec.chosen[first.key], rec.ties.get(first.key, [])
    note = f"{g.name}: same runs as {first.name}; its choice"
    rec.notes = [*[n for n in rec.notes if not n.startswith(f"{g.name}:")], note]


def _default_storage(grid: GridConfig) -> str:
    db = Path(grid.output_dir) / "tune" / f"{grid.name}.db"
    db.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{db}"


def record_md(trials: pd.DataFrame, doc: dict) -> str:
    """Per group: the chosen lr, the tied lrs, every lr's mean ± SE over the seeds."""
    seeds = tuple(doc["seeds"])
    lines = [
        "# Tuned learning rates (validation split only)",
        "",
        f"Tie rule: {TIE_RULE}. Seeds: {', '.join(map(str, seeds))}. Objective: {doc['objective']}.",
        f"Tuning cost: {doc['trial_wall_s'] / 3600:.2f} h of trial cells.",
        "",
        "| dataset | partition | method | chosen lr | tied lrs | val. accuracy per lr (mean ± SE over seeds, %) |",
        "|---|---|---|---|---|---|",
    ]
    for d, parts in doc["chosen"].items():
        for part, per in parts.items():
            for lab, lr in per.items():
                t = trials[
                    (trials.dataset == d) & (trials.alpha.astype(str) == part) & (trials.method == lab)
                ]
                stats = aggregate(as_trials(t.to_dict("records")), seeds)
                tied = doc["ties"].get(d, {}).get(part, {}).get(lab) or []
                ties = ", ".join(f"{x:g}" for x in tied) if tied else "-"
                lines.append(
                    f"| {d} | {part} | {lab} | {lr:g} | {ties} | {format_stats(stats, len(seeds))} |"
                )
    return "\n".join(lines) + "\n"


def remaining(grid: GridConfig, spec: TuneSpec, out: Path, jobs: int = 1) -> str:
    """What a resumed tune call has left against the record at ``out``, and a wall-time estimate from
    the record's own trials (each method's mean trial wall time, pruned trials included; a method with
    none yet: the mean of all), so a user can plan the sittings."""
    todo = groups(grid, spec)
    keys = {g.key: study_key(grid, g, spec) for g in todo}
    dups = same_runs(grid, todo, spec)
    rec = Record.read(out, keys)
    pending = [g for g in todo if g.key not in dups and _wanted(g, rec, spec, None, None)]
    walls = pd.DataFrame(
        [r for rows in (*rec.rows.values(), *rec.partial.values()) for r in rows],
        columns=["method", "wall_s"],
    ).dropna()
    per = walls.groupby("method").wall_s.mean().to_dict()
    mean = float(walls.wall_s.mean()) if len(walls) else float("nan")
    trials = kept = 0
    cost = 0.0
    for g in pending:
        n = len(spec.lrs_for(g)) * len(spec.seeds)
        done = min(n, len(rec.partial.get(g.key, [])))
        trials, kept = trials + n - done, kept + done
        cost += (n - done) * per.get(g.method.display, mean)
    chosen = sum(g.key in rec.chosen for g in todo if g.key not in dups)
    return (
        f"record {out.as_posix()}: {chosen} of {len(todo) - len(dups)} groups chosen; {len(pending)} to tune, "
        f"{trials} trials before edge extensions ({kept} kept from a stopped run): about {cost / 3600:.1f} h "
        f"of trial cells at the record's trial wall times, {cost / 3600 / max(1, jobs):.1f} h wall with "
        f"--jobs {max(1, jobs)} (on the machine and load that recorded them)"
    )
