"""``layerbench tune``: each method's learning rate per dataset, chosen on validation rows only.

Optuna (a kept library: resumable SQLite studies, pruners) runs one study per (dataset, method) at
one alpha (default: the grid's hardest, the smallest Dirichlet alpha) and one seed, over a log grid
of learning rates (``GridSampler``; the grid points are enqueued in order, so a resumed or re-run
study is deterministic). Each trial is a normal cell with ``data.evaluate_on: val``: the validation
rows (``data.val_fraction`` of train) replace the test split before the model exists, so tuning
cannot read a test row. ``MedianPruner`` stops a trial whose per-round validation accuracy falls
below the median of earlier trials at the same round. The objective is the mean validation accuracy
of the last two evaluations (it favours an lr that has settled, not one that spiked once).

Outputs (committed): ``configs/tuned/<grid>.yaml`` (what the grid reads via ``tuned:``),
``<grid>_trials.csv`` (every trial: lr, state, value, validation curve) and ``<grid>.md``.
The record is rewritten after every study and is the resume point across machines: a
(dataset, method) whose rows carry the current ``study_key`` is kept, not tuned again. The SQLite
DB stays under the grid's ``output_dir`` (``tune/<grid>.db``, not in git) and resumes a study cut
off mid-way.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from dataclasses import dataclass

import optuna

from fl_core.config import ConfigError, GridConfig, MethodSpec, RunConfig
from fl_core.errors import CellNotRunnable

log = logging.getLogger(__name__)
DEFAULT_LRS = (3e-5, 1e-4, 3e-4, 1e-3, 3e-3)


@dataclass(frozen=True)
class TuneSpec:
    alpha: float | str
    seed: int
    lrs: tuple[float, ...] = DEFAULT_LRS
    warmup_evals: int = 2  # evaluations before the pruner may stop a trial
    max_extend: int = 2  # steps the grid grows past an edge where the best lr sits (same rule for all)


def next_lr(lrs: list[float], up: bool) -> float:
    """One step past the grid's top (``up``) or bottom edge: on the 1-3 ladder (..., 1e-3, 3e-3, 1e-2,
    ...) when the edge is on it, else the grid's own ratio at that edge."""
    lo, hi = sorted(lrs)[:2], sorted(lrs)[-2:]
    edge = hi[1] if up else lo[0]
    k = math.floor(math.log10(edge) + 1e-9)
    mant = edge / 10**k
    if abs(mant - 1) < 1e-6:
        return (3 * 10**k) if up else (3 * 10 ** (k - 1))
    if abs(mant - 3) < 1e-6:
        return (10 ** (k + 1)) if up else (10**k)
    ratio = (hi[1] / hi[0] if up else lo[1] / lo[0]) if len(lrs) > 1 else 10.0
    return edge * ratio if up else edge / ratio


def hardest_alpha(grid: GridConfig) -> float | str:
    numeric = [a for a in grid.alphas if a != "iid"]
    return min(numeric) if numeric else "iid"


def tuning_cell(grid: GridConfig, dataset: str, method: MethodSpec, spec: TuneSpec, lr: float) -> RunConfig:
    """The cell of one trial: the grid's settings, the trial's lr, evaluation on validation rows."""
    if grid.data.val_fraction <= 0:
        raise ConfigError("tune needs data.val_fraction > 0 in the grid (validation rows carved from train)")
    data = grid.data.model_copy(update={"evaluate_on": "val"})
    return RunConfig(
        dataset=dataset,
        alpha=spec.alpha,
        method=method.model_copy(update={"lr": lr}),
        seed=spec.seed,
        model=grid.model,
        fl=grid.fl,
        data=data,
    )


def study_key(grid: GridConfig, dataset: str, method: MethodSpec, spec: TuneSpec) -> str:
    """What a study's trials depend on besides the lr (the trial cell's hash, the lr grid, the
    pruning warm-up): a record or study made under another key is stale and tuned again."""
    cell = tuning_cell(grid, dataset, method, spec, 1.0).hash()
    return hashlib.sha256(f"{cell}|{spec.lrs}|{spec.warmup_evals}".encode()).hexdigest()[:12]


def _objective(grid: GridConfig, dataset: str, method: MethodSpec, spec: TuneSpec, lrs: list[float]):
    from fl_core.simulator import run_cell

    def objective(trial: optuna.Trial) -> float:
        lr = trial.suggest_float("lr", min(lrs), max(lrs), log=True)
        cell = tuning_cell(grid, dataset, method, spec, lr)
        curve: list[tuple[int, float]] = []

        def on_round(row: dict) -> None:
            if "accuracy" in row and row["round"] >= 0:  # validation accuracy; not the pre-training eval
                curve.append((int(row["round"]), float(row["accuracy"])))
                trial.set_user_attr("curve", curve)
                trial.report(curve[-1][1], step=curve[-1][0])
                if len(curve) > spec.warmup_evals and trial.should_prune():
                    raise optuna.TrialPruned()

        t0 = time.perf_counter()
        try:
            res = run_cell(cell, on_round=on_round, progress=False)
        except CellNotRunnable as err:
            trial.set_user_attr("reason", str(err))
            raise
        finally:
            trial.set_user_attr("wall_s", round(time.perf_counter() - t0, 1))
        trial.set_user_attr("status", res.status)
        if res.status != "ok":
            return 0.0
        last = [a for _, a in curve[-2:]]
        return sum(last) / len(last)

    return objective


def _study(storage: str, name: str, lrs: list[float]) -> optuna.Study:
    study = optuna.create_study(
        study_name=name,
        storage=storage,
        load_if_exists=True,
        direction="maximize",
        sampler=optuna.samplers.GridSampler({"lr": list(lrs)}, seed=0),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=0),
    )
    for t in study.get_trials(deepcopy=False, states=[optuna.trial.TrialState.RUNNING]):
        study._storage.set_trial_state_values(t._trial_id, optuna.trial.TrialState.FAIL)  # a killed run
    return study


def _done_lrs(study: optuna.Study) -> set[float]:
    ok = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    return {t.params["lr"] for t in study.get_trials(deepcopy=False, states=ok) if "lr" in t.params}


def best_lr(trials: list[tuple[float, str, float | None]]) -> float | None:
    """The chosen lr among (lr, state, value) trials: the best completed one (ties: the smaller lr)."""
    done = [(v, -lr) for lr, state, v in trials if state == "complete" and v is not None]
    return -max(done)[1] if done else None


def extension(trials: list[tuple[float, str, float | None]], spec: TuneSpec) -> float | None:
    """The next lr to try when the best one sits on an edge of the lrs tried (at most ``max_extend``
    steps past the grid on that side), else None."""
    best, tried = best_lr(trials), sorted({lr for lr, _, _ in trials})
    if best is None or len(tried) < 2 or best not in (tried[0], tried[-1]):
        return None
    up = best == tried[-1]
    past = sum(lr > max(spec.lrs) for lr in tried) if up else sum(lr < min(spec.lrs) for lr in tried)
    return None if past >= spec.max_extend else next_lr(tried, up)


def was_killed(t: optuna.trial.FrozenTrial) -> bool:
    """A trial a stopped run left behind (failed with no reason): not tried, re-run on resume."""
    return t.state == optuna.trial.TrialState.FAIL and not t.user_attrs.get("reason")


def _trials(study: optuna.Study) -> list[tuple[float, str, float | None]]:
    """(lr, state, value) of the trials that ran (killed ones were not tried)."""
    return [
        (t.params["lr"], t.state.name.lower(), t.value)
        for t in study.get_trials(deepcopy=False)
        if "lr" in t.params and not was_killed(t)
    ]


def tune_one(
    grid: GridConfig, storage: str, dataset: str, method: MethodSpec, spec: TuneSpec
) -> optuna.Study:
    """Run (or resume) the study of one (dataset, method): every lr of the grid once, then one more
    step past an edge while the best lr sits on it (:func:`extension`)."""
    name = f"{grid.name}|{dataset}|{method.display}|a={spec.alpha}|s={spec.seed}|{study_key(grid, dataset, method, spec)}"
    lrs = list(spec.lrs)
    while True:
        study = _study(storage, name, lrs)
        todo = [lr for lr in lrs if lr not in _done_lrs(study)]
        for lr in todo:
            study.enqueue_trial({"lr": lr})
        if todo:
            study.optimize(
                _objective(grid, dataset, method, spec, lrs), n_trials=len(todo), catch=(CellNotRunnable,)
            )
        more = extension(_trials(study), spec)
        if more is None:
            return study
        lrs.append(more)
