"""``layerbench tune``: each method's learning rate per (dataset, partition), chosen on validation rows.

Optuna (a kept library: resumable SQLite studies, pruners) runs one study per (dataset, partition,
method, seed): every partition of ``grid.alphas_of(dataset)`` (``--alpha`` may restrict them) and
every tuning seed (default: the grid's ``tune_seeds``, else its first two seeds). A study tries a grid of learning rates
(``GridSampler``; the lrs are enqueued in order, so a resumed or re-run study is deterministic).
Each trial is a normal cell with ``data.evaluate_on: val``: the validation rows
(``data.val_fraction`` of train) replace the test split before the model exists, so tuning cannot
read a test row. The objective is the mean validation accuracy of the last :func:`objective_window`
evaluations (two, or the grid's ``fl.final_window`` where that is larger: what the report publishes).

Pruning only in the second half: ``MedianPruner`` may stop a trial below the median of the study's
earlier trials only at a round index >= ``fl.rounds // 2`` (:func:`prune_from`; its warm-up steps),
so no lr is judged on its first half. The choice over the seeds is :mod:`fl_core.tune_choice` (the
tie rule: within one standard error of the winner's mean, the smallest lr).

Cost (in cell-equivalents; a trial is a cell of the grid's length, a pruned one at least half):
per (dataset, partition, method) the grid runs S cells (its seeds), tuning T x (L + E) trials (T
tuning seeds, L lrs, E edge extensions), so tuning / grid <= T (L + E) / S. The default 5 lrs at
T = 2 is 10 / S (S = 5: 200 %); ``--center-from <an earlier tuned file>`` gives each method the 3
lrs around its earlier choice (lr/3, lr, 3 lr on the 1-3 ladder): 6 / S (S = 5: 120 %, S = 10:
60 %, S = 20: 30 %), minus what second-half pruning saves (at most half of the third trial of each
study: 3 lrs x 2 seeds -> >= 5 cell-equivalents). A group whose trials are the same runs as an
earlier group's (:func:`same_runs`) is tuned once, and the grid runs such cells once too, so both
sides drop them. ``--dry-run`` prints the plan and this ratio. So <= 30 % at 3 lrs x 2 seeds needs
S >= 20 grid seeds (or trials cheaper than cells); at S = 5 it is about 100-120 %.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import optuna
from optuna.trial import TrialState

from fl_core.config import Alpha, ConfigError, GridConfig, MethodSpec, RunConfig, alpha_key, tuned_lr
from fl_core.errors import CellNotRunnable
from fl_core.metrics import ACCURACY
from fl_core.tune_choice import centred, next_lr

__all__ = [
    "DEFAULT_LRS",
    "Group",
    "TuneSpec",
    "next_lr",
    "prune_from",
    "run_study",
    "study_key",
    "study_name",
]

log = logging.getLogger(__name__)
DEFAULT_LRS = (3e-5, 1e-4, 3e-4, 1e-3, 3e-3)
STARTUP_TRIALS = 2  # completed trials a study needs before its pruner may stop one


@dataclass(frozen=True)
class Group:
    """What one lr is chosen for: a (dataset, partition, method)."""

    dataset: str
    alpha: Alpha
    method: MethodSpec

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.dataset, alpha_key(self.alpha), self.method.display)

    @property
    def name(self) -> str:
        return "/".join(self.key)


@dataclass(frozen=True)
class TuneSpec:
    seeds: tuple[int, ...]
    alphas: tuple[Alpha, ...] | None = None  # None: every partition of each dataset
    lrs: tuple[float, ...] = DEFAULT_LRS
    max_extend: int = 2  # steps the grid grows past an edge holding the winner or the choice
    prune: bool = True  # MedianPruner in the second half of the rounds
    center: Mapping = field(default_factory=dict)  # an earlier record's `chosen`: 3 lrs around each

    def lrs_for(self, group: Group) -> tuple[float, ...]:
        """The group's starting lrs: 3 around its earlier choice (``center``), else ``lrs``."""
        return self.lrs_at(*group.key)

    def lrs_at(self, dataset: str, partition: str, label: str) -> tuple[float, ...]:
        if not self.center:
            return tuple(self.lrs)
        try:
            return centred(tuned_lr(dict(self.center), dataset, partition, label))
        except KeyError:
            log.warning(
                "%s/%s/%s: not in the centring record; tuning over %s", dataset, partition, label, self.lrs
            )
            return tuple(self.lrs)


def groups(grid: GridConfig, spec: TuneSpec) -> list[Group]:
    """Every (dataset, partition, method without its own lr) the spec tunes, in grid order."""
    keys = {alpha_key(a) for a in spec.alphas} if spec.alphas else None
    return [
        Group(d, a, m)
        for d in grid.datasets
        for a in grid.alphas_of(d)
        if keys is None or alpha_key(a) in keys
        for m in grid.methods
        if m.lr is None
    ]


def same_runs(grid: GridConfig, gs: Sequence[Group], spec: TuneSpec) -> dict[tuple[str, str, str], Group]:
    """Group key -> the earlier group whose trials are the same runs (:func:`fl_core.duplicates.run_key`:
    a method that resolves to another, a partition-free method at a later partition): tuned once,
    its choice copied, so the grid's duplicate cells stay duplicates (equal lrs)."""
    from fl_core.duplicates import run_key

    first: dict[str, Group] = {}
    out = {}
    for g in gs:
        k = run_key(tuning_cell(grid, g, spec.seeds[0], 1.0))
        if k in first:
            out[g.key] = first[k]
        else:
            first[k] = g
    return out


def objective_window(grid: GridConfig) -> int:
    """Evaluations the objective averages: the last two, or the published ``fl.final_window`` if larger."""
    return max(2, grid.fl.final_window)


def prune_from(rounds: int) -> int:
    """The first 0-based round index at which a trial may be pruned: past the first half."""
    return rounds // 2


def tuning_cell(grid: GridConfig, group: Group, seed: int, lr: float) -> RunConfig:
    """The cell of one trial: the grid's settings, the trial's lr, evaluation on validation rows."""
    if grid.data.val_fraction <= 0:
        raise ConfigError("tune needs data.val_fraction > 0 in the grid (validation rows carved from train)")
    data = grid.data.model_copy(update={"evaluate_on": "val"})
    method = group.method.model_copy(update={"lr": lr})
    return RunConfig(
        dataset=group.dataset,
        alpha=group.alpha,
        method=method,
        seed=seed,
        model=grid.model,
        fl=grid.fl,
        data=data,
    )


def study_key(grid: GridConfig, group: Group, spec: TuneSpec) -> str:
    """What a group's trials depend on besides the lr (the trial cells' hashes per seed, the starting
    lrs, the pruning rule): a record made under another key is stale and tuned again."""
    cells = [tuning_cell(grid, group, s, 1.0).hash() for s in spec.seeds]
    prune = f"from {prune_from(grid.fl.rounds)}" if spec.prune else "off"
    text = f"{cells}|{spec.lrs_for(group)}|{prune}|{spec.max_extend}"
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def _objective(grid: GridConfig, group: Group, seed: int, lrs: Sequence[float], prune: bool):
    from fl_core.simulator import run_cell

    start = prune_from(grid.fl.rounds)

    def objective(trial: optuna.Trial) -> float:
        lr = trial.suggest_float("lr", min(lrs), max(lrs), log=True)
        curve: list[tuple[int, float]] = []

        def on_round(row: dict) -> None:
            if ACCURACY in row and row["round"] >= 0:  # validation accuracy; not the pre-training eval
                curve.append((int(row["round"]), float(row[ACCURACY])))
                trial.set_user_attr("curve", curve)
                trial.report(curve[-1][1], step=curve[-1][0])
                if prune and curve[-1][0] >= start and trial.should_prune():
                    raise optuna.TrialPruned()

        t0 = time.perf_counter()
        try:
            res = run_cell(tuning_cell(grid, group, seed, lr), on_round=on_round, progress=False)
        except CellNotRunnable as err:
            trial.set_user_attr("reason", str(err))
            raise
        finally:
            trial.set_user_attr("wall_s", round(time.perf_counter() - t0, 1))
        trial.set_user_attr("status", res.status)
        if res.status != "ok":
            return 0.0
        last = [a for _, a in curve[-objective_window(grid) :]]
        return sum(last) / len(last)

    return objective


def _study(storage: str, name: str, lrs: Sequence[float], warmup: int) -> optuna.Study:
    study = optuna.create_study(
        study_name=name,
        storage=storage,
        load_if_exists=True,
        direction="maximize",
        sampler=optuna.samplers.GridSampler({"lr": list(lrs)}, seed=0),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=STARTUP_TRIALS, n_warmup_steps=warmup),
    )
    # a stopped run leaves its running trial, and the trials it had queued, unfinished: failed with
    # no reason, i.e. not tried (re-run on resume, left out of the record)
    for t in study.get_trials(deepcopy=False, states=[TrialState.RUNNING, TrialState.WAITING]):
        study._storage.set_trial_state_values(t._trial_id, TrialState.FAIL)
    return study


def was_killed(t: optuna.trial.FrozenTrial) -> bool:
    """A trial a stopped run left behind (failed with no reason): not tried, re-run on resume."""
    return t.state == optuna.trial.TrialState.FAIL and not t.user_attrs.get("reason")


def _done_lrs(study: optuna.Study) -> set[float]:
    return {
        t.params["lr"] for t in study.get_trials(deepcopy=False) if "lr" in t.params and not was_killed(t)
    }


def study_name(grid: GridConfig, group: Group, seed: int, spec: TuneSpec) -> str:
    return f"{grid.name}|{group.name}|s={seed}|{study_key(grid, group, spec)}"


def add_recorded(study: optuna.Study, rows: Sequence[dict], lrs: Sequence[float]) -> None:
    """Put trials a committed record holds (its CSV rows, one seed) into an empty study, so a resumed
    run on another machine does not repeat them: complete, pruned and not-runnable (failed with a
    reason) trials, with the value and the validation curve as recorded (4 decimals)."""
    states = {"complete": TrialState.COMPLETE, "pruned": TrialState.PRUNED, "fail": TrialState.FAIL}
    dist = {"lr": optuna.distributions.FloatDistribution(min(lrs), max(lrs), log=True)}
    for r in rows:
        state = states.get(str(r["state"]))
        if state is None or (state == TrialState.FAIL and not r.get("reason")):
            continue
        rounds = [int(x) - 1 for x in str(r.get("rounds") or "").split(";") if x]
        accs = [float(x) for x in str(r.get("val_accuracy") or "").split(";") if x]
        curve = list(zip(rounds, accs, strict=True))
        value = r["value"] if state != TrialState.FAIL and r["value"] == r["value"] else None
        attrs = {"curve": curve, "wall_s": r.get("wall_s"), "recorded": True}
        attrs.update({"reason": r["reason"]} if r.get("reason") else {})
        study.add_trial(
            optuna.trial.create_trial(
                state=state,
                value=None if value is None else float(value),
                params={"lr": float(r["lr"])},
                distributions=dist,
                user_attrs=attrs,
                intermediate_values=dict(curve),
            )
        )


def run_study(
    grid: GridConfig,
    storage: str,
    group: Group,
    seed: int,
    lrs: Sequence[float],
    spec: TuneSpec,
    recorded: Sequence[dict] = (),
) -> optuna.Study:
    """Run (or resume) the study of one (dataset, partition, method, seed): every lr of ``lrs`` once;
    ``recorded``: this seed's trials from a committed record, put into the study if it is new."""
    study = _study(storage, study_name(grid, group, seed, spec), lrs, prune_from(grid.fl.rounds))
    if recorded and not study.get_trials(deepcopy=False):
        add_recorded(study, recorded, [*lrs, *(float(r["lr"]) for r in recorded)])
    todo = [lr for lr in lrs if lr not in _done_lrs(study)]
    for lr in todo:
        study.enqueue_trial({"lr": lr})
    if todo:
        study.optimize(
            _objective(grid, group, seed, lrs, spec.prune), n_trials=len(todo), catch=(CellNotRunnable,)
        )
    return study


def plan(grid: GridConfig, spec: TuneSpec) -> str:
    """What a tune call would run, and its cost against the grid in cell-equivalents (module docstring)."""
    dups = same_runs(grid, groups(grid, spec), spec)
    gs = [g for g in groups(grid, spec) if g.key not in dups]
    trials = sum(len(spec.lrs_for(g)) for g in gs) * len(spec.seeds)
    cells = sum(len(grid.alphas_of(d)) for d in grid.datasets) * len(grid.methods) * len(grid.seeds)
    cells -= len(dups) * len(grid.seeds)  # the grid runs a duplicate cell once too
    share = 100 * trials / cells if cells else float("nan")
    return (
        f"{len(gs)} (dataset, partition, method) groups x {len(spec.seeds)} seeds = "
        f"{len(gs) * len(spec.seeds)} studies ({len(dups)} more groups are the same runs as one of these), "
        f"{trials} trials before edge extensions ({len(spec.seeds)} "
        f"more per extension step); the grid runs {cells} cells. Tuning <= {share:.0f} % of the grid in "
        f"cell-equivalents (a trial is at most one cell; pruning from round index "
        f"{prune_from(grid.fl.rounds)} of {grid.fl.rounds} saves at most half of a pruned one)"
    )
