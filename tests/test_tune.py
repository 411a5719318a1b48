"""layerbench tune: per (dataset, partition, method) lr over >= 2 seeds on validation rows only;
resumable; never reads test; pruning only in the second half of the rounds."""

from __future__ import annotations

import pandas as pd
import pytest
import yaml

import fl_core.simulator as sim
from fl_core.config import ConfigError
from fl_core.data.splits import Splits
from fl_core.tune import TuneSpec
from fl_core.tune_record import run_tune
from fl_core.validate import parse_grid
from tests.conftest import tiny_grid_dict


class PoisonSplit:
    """Stands in for the test split: any use of it fails the test."""

    def __getattr__(self, name):
        raise AssertionError(f"the test split was read during tuning (.{name})")

    def __len__(self):
        raise AssertionError("the test split was read during tuning (len)")


@pytest.fixture
def poisoned_test(monkeypatch):
    real = sim.load_splits

    def load(*a, **k) -> Splits:
        s = real(*a, **k)
        return Splits(s.train, PoisonSplit(), s.label_names, s.split_hash)  # type: ignore[arg-type]

    monkeypatch.setattr(sim, "load_splits", load)


def _grid(tmp_path, **over):
    d = tiny_grid_dict(tmp_path, alphas=[0.5, 1.0])
    d["data"] = {**d["data"], "val_fraction": 0.2}
    d.update(over)
    return parse_grid(d)


def test_the_poison_works(tmp_path, poisoned_test):
    cell = _grid(tmp_path).cells()[0]
    with pytest.raises(AssertionError, match="test split was read"):
        sim.run_cell(cell, progress=False)


def test_tune_reads_only_validation_rows_and_writes_a_per_partition_record(tmp_path, poisoned_test):
    """Real tiny cells: every (partition, method) over 2 seeds; the grid reads the record back."""
    grid = _grid(tmp_path, methods=[{"name": "head"}])
    spec = TuneSpec(seeds=(0, 1), lrs=(1e-4, 1e-2), max_extend=0)
    out = run_tune(grid, "t.yaml", spec, tmp_path / "tuned" / "t.yaml")
    doc = yaml.safe_load(out.read_text())
    assert set(doc["chosen"]["bbc_news"]) == {"0.5", "1.0"}
    assert all(set(per) == {"head"} for per in doc["chosen"]["bbc_news"].values())
    trials = pd.read_csv(out.with_name("t_trials.csv"), dtype={"alpha": str})
    assert len(trials) == 8 and set(trials.seed) == {0, 1} and set(trials.alpha) == {"0.5", "1.0"}
    assert doc["seeds"] == [0, 1] and "smallest tied lr" in doc["tie_rule"]
    assert "# Tie rule:" in out.read_text() and "tied lrs" in out.with_suffix(".md").read_text()
    g2 = _grid(tmp_path, methods=[{"name": "head"}], tuned=str(out))
    assert {c.alpha: c.fl.lr for c in g2.cells()} == {
        0.5: doc["chosen"]["bbc_news"]["0.5"]["head"],
        1.0: doc["chosen"]["bbc_news"]["1.0"]["head"],
    }


def test_tune_needs_a_validation_split_and_two_seeds(tmp_path):
    grid = parse_grid(tiny_grid_dict(tmp_path))
    with pytest.raises(ConfigError, match="val_fraction"):
        run_tune(grid, "t.yaml", TuneSpec(seeds=(0, 1), lrs=(1e-4,)), tmp_path / "t.yaml")
    with pytest.raises(ConfigError, match=">= 2 seeds"):
        run_tune(_grid(tmp_path), "t.yaml", TuneSpec(seeds=(0,), lrs=(1e-4,)), tmp_path / "t.yaml")


def _fake_cell(acc, calls: list | None = None, kill_at: float | None = None):
    """A stand-in ``run_cell``: validation accuracy ``acc(lr, seed, alpha)`` at every round; the first
    cell at ``kill_at`` is killed (KeyboardInterrupt) as a stopped run would be."""
    killed = []

    def run_cell(cell, on_round=None, progress=False, **k):
        assert cell.data.evaluate_on == "val"
        if kill_at is not None and cell.fl.lr == pytest.approx(kill_at) and not killed:
            killed.append(cell.fl.lr)
            raise KeyboardInterrupt
        if calls is not None:
            calls.append((cell.alpha, cell.seed, cell.method.display, cell.fl.lr))
        for r in range(cell.fl.rounds):
            on_round({"round": r, "accuracy": acc(cell.fl.lr, cell.seed, cell.alpha)})
        return sim.CellResult("ok", [], [], [], {})

    run_cell.killed = killed
    return run_cell


def _run(tmp_path, monkeypatch, acc, spec, **grid_over):
    calls: list = []
    monkeypatch.setattr(sim, "run_cell", _fake_cell(acc, calls))
    grid = _grid(tmp_path, **{"methods": [{"name": "full"}], **grid_over})
    out = run_tune(grid, "t.yaml", spec, tmp_path / "t.yaml", storage=f"sqlite:///{tmp_path}/t.db")
    return yaml.safe_load(out.read_text()), calls, out


def test_one_study_per_partition_and_seed_and_the_tie_rule_over_seeds(tmp_path, monkeypatch):
    """At alpha 0.5, means over seeds 0/1: 1e-4 -> 0.50, 1e-3 -> 0.79, 1e-2 -> 0.80 with SE 0.02
    (0.78, 0.82): 1e-3 is within one SE of the winner 1e-2, so both are tied and 1e-3 (smaller) is
    chosen. At alpha 1.0 the seeds agree (SE 0): 1e-2 alone wins."""
    table = {0.5: {1e-4: (0.5, 0.5), 1e-3: (0.79, 0.79), 1e-2: (0.78, 0.82)}}
    table[1.0] = {1e-4: (0.5, 0.5), 1e-3: (0.79, 0.79), 1e-2: (0.80, 0.80)}
    spec = TuneSpec(seeds=(0, 1), lrs=(1e-4, 1e-3, 1e-2), max_extend=0)
    doc, calls, out = _run(tmp_path, monkeypatch, lambda lr, s, a: table[a][lr][s], spec)
    assert sorted({(a, s) for a, s, _, _ in calls}) == [(0.5, 0), (0.5, 1), (1.0, 0), (1.0, 1)]
    assert len(calls) == 12  # 2 partitions x 2 seeds x 3 lrs
    assert doc["chosen"] == {"bbc_news": {"0.5": {"full": 1e-3}, "1.0": {"full": 1e-2}}}
    assert doc["ties"] == {"bbc_news": {"0.5": {"full": [1e-3, 1e-2]}}}
    md = out.with_suffix(".md").read_text()
    assert (
        "| bbc_news | 0.5 | full | 0.001 | 0.001, 0.01 | 0.0001: 50.0 ± 0.0, 0.001: 79.0 ± 0.0, 0.01: 80.0 ± 2.0 |"
        in md
    )


def test_alpha_restricts_the_partitions_and_seeds_are_the_specs(tmp_path, monkeypatch):
    spec = TuneSpec(seeds=(3, 4), alphas=(1.0,), lrs=(1e-4, 1e-3), max_extend=0)
    doc, calls, _ = _run(tmp_path, monkeypatch, lambda lr, s, a: lr, spec)
    assert {(a, s) for a, s, _, _ in calls} == {(1.0, 3), (1.0, 4)}
    assert doc["chosen"] == {"bbc_news": {"1.0": {"full": 1e-3}}}


def test_no_pruning_in_the_first_half_of_the_rounds(tmp_path, monkeypatch):
    """10 rounds: the third lr of each study is far below the first two from round 0, yet it runs
    through round index 4 and is pruned at round index 5 (= rounds // 2), never earlier."""
    fl = {**tiny_grid_dict(tmp_path)["fl"], "rounds": 10}
    seen: dict[tuple[int, float], int] = {}

    def acc(lr, seed, alpha):
        seen[(seed, lr)] = seen.get((seed, lr), 0) + 1
        return 0.1 if lr == 1e-2 else 0.9

    spec = TuneSpec(seeds=(0, 1), alphas=(1.0,), lrs=(1e-4, 1e-3, 1e-2), max_extend=0)
    doc, _, out = _run(tmp_path, monkeypatch, acc, spec, fl=fl)
    trials = pd.read_csv(out.with_name("t_trials.csv"))
    bad = trials[trials.lr == 1e-2]
    assert list(bad.state) == ["pruned", "pruned"] and (bad.rounds == "1;2;3;4;5;6").all()
    assert (trials[trials.lr != 1e-2].state == "complete").all()
    assert seen[(0, 1e-2)] == 6  # round indices 0..5: pruned at the first round past the first half
    assert "from round index 5 of 10" in doc["objective"]
    assert doc["chosen"]["bbc_news"]["1.0"]["full"] == 1e-4  # 1e-4 and 1e-3 tie exactly: the smaller


def test_prune_from_is_the_second_half():
    from fl_core.tune import prune_from

    assert [prune_from(r) for r in (1, 2, 5, 10, 20)] == [0, 1, 2, 5, 10]


def test_a_seed_that_did_not_complete_an_lr_drops_it():
    from fl_core.tune_choice import aggregate, choose

    trials = [(1e-3, 0, "complete", 0.9), (1e-3, 1, "pruned", 0.2), (1e-4, 0, "complete", 0.6)]
    trials += [(1e-4, 1, "complete", 0.7)]
    stats = aggregate(trials, (0, 1))
    assert [(s.lr, s.mean) for s in stats] == [(1e-4, pytest.approx(0.65)), (1e-3, None)]
    assert (stats[1].n, stats[1].pruned) == (1, 1)
    assert stats[0].se == pytest.approx(0.05)  # sd 0.0707 / sqrt 2
    assert choose(stats).lr == 1e-4


def test_the_tie_rule_on_crafted_values():
    """Winner 3e-4 (mean 0.80, SE 0.03): 1e-4 (0.78) and 1e-3 (0.771) are within 0.03, 3e-5 (0.76)
    is not; the chosen lr is the smallest tied one, 1e-4. Equal means: the smaller lr wins."""
    from fl_core.tune_choice import LrStat, choose

    stats = [
        LrStat(3e-5, 0.76, 0.01, 2),
        LrStat(1e-4, 0.78, 0.01, 2),
        LrStat(3e-4, 0.80, 0.03, 2),
        LrStat(1e-3, 0.771, 0.05, 2),
        LrStat(3e-3, None, None, 1),
    ]
    c = choose(stats)
    assert (c.winner, c.lr, c.ties) == (3e-4, 1e-4, (1e-4, 3e-4, 1e-3))
    assert choose([LrStat(1e-3, 0.8, 0.0, 2), LrStat(1e-4, 0.8, 0.0, 2)]).ties == (1e-4, 1e-3)
    assert choose([LrStat(1e-3, 0.8, 0.0, 2), LrStat(1e-4, 0.79, 0.0, 2)]).lr == 1e-3  # SE 0: no tie
    assert choose([LrStat(1e-3, None, None, 0)]).lr is None


def test_next_lr_walks_the_one_three_ladder_or_the_grids_own_ratio():
    from fl_core.tune_choice import centred, next_lr

    grid = [3e-5, 1e-4, 3e-4, 1e-3, 3e-3]
    assert next_lr(grid, up=True) == pytest.approx(1e-2)
    assert next_lr([*grid, 1e-2], up=True) == pytest.approx(3e-2)
    assert next_lr(grid, up=False) == pytest.approx(1e-5)
    assert next_lr([1e-5, *grid], up=False) == pytest.approx(3e-6)
    assert next_lr([2e-4, 4e-4], up=True) == pytest.approx(8e-4)  # off the ladder: the grid's ratio
    assert centred(1e-4) == pytest.approx((3e-5, 1e-4, 3e-4))
    assert centred(3e-4) == pytest.approx((1e-4, 3e-4, 1e-3))


def test_extension_reads_the_means_past_an_edge_that_holds_the_winner_or_the_choice():
    from fl_core.tune_choice import LrStat, extension

    base = (1e-4, 1e-3, 1e-2)

    def st(*means):
        return [LrStat(lr, m, 0.0 if m is not None else None, 2) for lr, m in zip(base, means, strict=False)]

    assert extension(st(0.5, 0.9, None), base, 2) is None  # the best inside
    assert extension(st(0.5, 0.6, 0.9), base, 2) == pytest.approx(3e-2)  # winner on top
    assert extension(st(0.9, 0.6, 0.1), base, 2) == pytest.approx(3e-5)  # winner at the bottom
    top = [*st(0.5, 0.6, 0.9), LrStat(3e-2, 0.95, 0.0, 2), LrStat(1e-1, 0.97, 0.0, 2)]
    assert extension(top, base, 2) is None  # two steps past the grid already
    # winner inside, but the tie rule's choice (the smallest tied lr) sits at the bottom edge
    tied = [LrStat(1e-4, 0.85, 0.0, 2), LrStat(1e-3, 0.9, 0.1, 2), LrStat(1e-2, 0.2, 0.0, 2)]
    assert extension(tied, base, 2) == pytest.approx(3e-5)
    assert extension(st(None, None, None), base, 2) is None  # nothing completed


def test_tune_grows_the_grid_past_the_edge_on_the_means(tmp_path, monkeypatch):
    """Mean validation accuracy rises with lr up to 3e-2 (seed noise +-0.001): both seeds try the grid,
    then 1e-2 and 3e-2 (two steps), and the record chooses 3e-2."""
    spec = TuneSpec(seeds=(0, 1), alphas=(1.0,), lrs=(1e-4, 1e-3, 3e-3), max_extend=2)
    doc, calls, out = _run(tmp_path, monkeypatch, lambda lr, s, a: min(lr, 3e-2) * 10 + 1e-3 * s, spec)
    trials = pd.read_csv(out.with_name("t_trials.csv"))
    assert sorted(trials[trials.seed == 1].lr) == pytest.approx([1e-4, 1e-3, 3e-3, 1e-2, 3e-2])
    assert len(trials) == 10 and doc["chosen"]["bbc_news"]["1.0"]["full"] == pytest.approx(3e-2)


def test_center_from_gives_three_lrs_around_the_earlier_choice(tmp_path, monkeypatch):
    """An old-format record chose 3e-4 for full: the study tries 1e-4, 3e-4, 1e-3 on each seed."""
    spec = TuneSpec(seeds=(0, 1), alphas=(1.0,), max_extend=0, center={"bbc_news": {"full": 3e-4}})
    doc, calls, _ = _run(tmp_path, monkeypatch, lambda lr, s, a: 0.5, spec)
    assert sorted(lr for _, s, _, lr in calls if s == 0) == pytest.approx([1e-4, 3e-4, 1e-3])
    assert doc["start_lrs"]["bbc_news"]["1.0"]["full"] == pytest.approx([1e-4, 3e-4, 1e-3])


def test_the_committed_record_resumes_on_a_fresh_machine(tmp_path, monkeypatch):
    """One group per call (filters), a new DB each time: the record grows, current groups are kept
    without a trial, and a changed setting makes them stale (tuned again)."""
    monkeypatch.setattr(sim, "run_cell", _fake_cell(lambda lr, s, a: lr))
    grid = _grid(tmp_path)
    spec = TuneSpec(seeds=(0, 1), alphas=(1.0,), lrs=(1e-4, 1e-2), max_extend=0)
    out = tmp_path / "tuned" / "t.yaml"
    for i, label in enumerate(["full", "head"]):
        run_tune(grid, "t.yaml", spec, out, storage=f"sqlite:///{tmp_path}/db{i}.db", methods=[label])
    doc = yaml.safe_load(out.read_text())
    assert set(doc["chosen"]["bbc_news"]["1.0"]) == {"full", "head"}
    trials = pd.read_csv(out.with_name("t_trials.csv"))
    assert len(trials) == 8 and trials.tune_key.nunique() == 2

    def no_training(*a, **k):
        raise AssertionError("a current record entry was tuned again")

    monkeypatch.setattr(sim, "run_cell", no_training)
    run_tune(grid, "t.yaml", spec, out, storage=f"sqlite:///{tmp_path}/fresh.db")
    assert yaml.safe_load(out.read_text())["chosen"] == doc["chosen"]
    assert pd.read_csv(out.with_name("t_trials.csv")).equals(trials)
    longer = _grid(tmp_path, fl={**tiny_grid_dict(tmp_path)["fl"], "rounds": 3})
    with pytest.raises(AssertionError, match="tuned again"):
        run_tune(longer, "t.yaml", spec, out, storage=f"sqlite:///{tmp_path}/fresh2.db")


def test_a_killed_extension_trial_is_tried_again_on_resume(tmp_path, monkeypatch):
    """The run is killed inside the first step past the edge (1e-2): on resume that step is not counted
    as tried, so the group still grows to 3e-2 and chooses it."""
    fake = _fake_cell(lambda lr, s, a: min(lr, 3e-2) * 10, kill_at=1e-2)
    monkeypatch.setattr(sim, "run_cell", fake)
    grid = _grid(tmp_path, methods=[{"name": "full"}])
    spec = TuneSpec(seeds=(0, 1), alphas=(1.0,), lrs=(1e-4, 1e-3, 3e-3), max_extend=2)
    kw = dict(storage=f"sqlite:///{tmp_path}/t.db")
    with pytest.raises(KeyboardInterrupt):
        run_tune(grid, "t.yaml", spec, tmp_path / "t.yaml", **kw)
    out = run_tune(grid, "t.yaml", spec, tmp_path / "t.yaml", **kw)
    assert fake.killed and yaml.safe_load(out.read_text())["chosen"]["bbc_news"]["1.0"][
        "full"
    ] == pytest.approx(3e-2)
    trials = pd.read_csv(out.with_name("t_trials.csv"))
    assert sorted(trials[trials.seed == 0].lr) == pytest.approx([1e-4, 1e-3, 3e-3, 1e-2, 3e-2])


def test_dry_run_plan_counts_studies_trials_and_the_share_of_the_grid(tmp_path):
    from fl_core.tune import plan

    grid = _grid(tmp_path, seeds=[0, 1, 2, 3, 4])
    text = plan(grid, TuneSpec(seeds=(0, 1), lrs=(1e-4, 3e-4, 1e-3)))
    # 2 partitions x 2 methods = 4 groups; 8 studies; 24 trials; the grid: 20 cells -> 120 %
    assert "4 (dataset, partition, method) groups x 2 seeds = 8 studies (0 more groups" in text
    assert "24 trials" in text and "runs 20 cells" in text and "<= 120 %" in text
    # centralized ignores the partition: one group, and the grid runs it once per dataset too
    grid = _grid(tmp_path, seeds=[0, 1, 2, 3, 4], methods=[{"name": "centralized"}, {"name": "full"}])
    text = plan(grid, TuneSpec(seeds=(0, 1), lrs=(1e-4, 3e-4, 1e-3)))
    assert "3 (dataset, partition, method) groups" in text and "(1 more groups" in text
    assert "18 trials" in text and "runs 15 cells" in text and "<= 120 %" in text


def test_groups_that_are_the_same_runs_are_tuned_once_and_share_the_choice(tmp_path, monkeypatch):
    """``full-again`` is ``full`` under another label, and ``centralized`` ignores the partition: each is
    tuned once (at its first partition) and the later groups copy the choice, so the grid's duplicate
    cells keep equal lrs (and stay duplicates)."""
    methods = [{"name": "centralized"}, {"name": "full"}, {"name": "full", "label": "full-again"}]
    spec = TuneSpec(seeds=(0, 1), lrs=(1e-4, 1e-3), max_extend=0)
    doc, calls, out = _run(tmp_path, monkeypatch, lambda lr, s, a: lr * (1 + a), spec, methods=methods)
    assert sorted({(a, m) for a, _, m, _ in calls}) == [(0.5, "centralized"), (0.5, "full"), (1.0, "full")]
    chosen = doc["chosen"]["bbc_news"]
    assert chosen["1.0"]["centralized"] == chosen["0.5"]["centralized"] == 1e-3
    assert chosen["0.5"]["full-again"] == chosen["0.5"]["full"] and "full-again" in chosen["1.0"]
    assert "bbc_news/1.0/centralized: same runs as bbc_news/0.5/centralized; its choice" in doc["notes"]
    assert set(pd.read_csv(out.with_name("t_trials.csv")).method) == {"centralized", "full"}


def test_the_objective_averages_the_published_final_window(tmp_path, monkeypatch):
    """fl.final_window: 3 -> the objective is the mean of the last 3 validation evaluations (else 2)."""
    curve = {
        1e-4: [0.1, 0.2, 0.9, 0.3, 0.6],
        1e-3: [0.1, 0.2, 0.3, 0.6, 0.6],
    }  # the last 2 and the last 3 rank them oppositely

    def run_cell(cell, on_round=None, progress=False, **k):
        for r, a in enumerate(curve[cell.fl.lr]):
            on_round({"round": r, "accuracy": a})
        return sim.CellResult("ok", [], [], [], {})

    monkeypatch.setattr(sim, "run_cell", run_cell)
    for window, values in ((1, {0.45, 0.6}), (3, {0.6, 0.5})):
        grid = _grid(tmp_path, methods=[{"name": "full"}], alphas=[1.0])
        grid = grid.model_copy(
            update={"fl": grid.fl.model_copy(update={"rounds": 5, "final_window": window})}
        )
        spec = TuneSpec(seeds=(0, 1), lrs=(1e-4, 1e-3), max_extend=0, prune=False)
        out = run_tune(
            grid, "t.yaml", spec, tmp_path / f"w{window}.yaml", storage=f"sqlite:///{tmp_path}/w{window}.db"
        )
        trials = pd.read_csv(out.with_name(f"w{window}_trials.csv"))
        assert set(trials.value.round(6)) == values
        assert (
            f"last {'two' if window == 1 else 3} evaluations" in yaml.safe_load(out.read_text())["objective"]
        )


def test_jobs_tune_groups_in_parallel_processes_with_the_same_record(tmp_path):
    """Real tiny cells: --jobs 2 (spawned workers, 1 thread each) writes the record one job writes."""
    grid = _grid(
        tmp_path, methods=[{"name": "head"}, {"name": "top_k", "params": {"k": 1}}], threads_per_cell=1
    )
    spec = TuneSpec(seeds=(0, 1), lrs=(1e-4, 1e-2), max_extend=0, prune=False)
    docs, trials = [], []
    for jobs in (1, 2):
        out = tmp_path / f"j{jobs}" / "t.yaml"
        run_tune(grid, "t.yaml", spec, out, storage=f"sqlite:///{tmp_path}/j{jobs}.db", jobs=jobs)
        docs.append(yaml.safe_load(out.read_text()))
        t = pd.read_csv(out.with_name("t_trials.csv"), dtype={"alpha": str})
        trials.append(
            t.sort_values(["alpha", "method", "seed", "lr"])[["alpha", "method", "seed", "lr", "value"]]
        )
    assert docs[0]["chosen"] == docs[1]["chosen"] and len(trials[0]) == 16
    pd.testing.assert_frame_equal(trials[0].reset_index(drop=True), trials[1].reset_index(drop=True))


def test_a_group_stopped_midway_resumes_on_a_fresh_machine_without_repeating_its_trials(
    tmp_path, monkeypatch
):
    """Killed inside a group's third trial: the record keeps the two finished trials (``in_progress``);
    a new machine (a new DB) runs only the rest, and chooses what one uninterrupted run chooses."""
    acc = lambda lr, s, a: {1e-4: 0.5, 1e-3: 0.7, 1e-2: 0.6}[lr] + 0.01 * s  # noqa: E731
    grid = _grid(tmp_path, methods=[{"name": "full"}])
    spec = TuneSpec(seeds=(0, 1), alphas=(1.0,), lrs=(1e-4, 1e-3, 1e-2), max_extend=0, prune=False)
    monkeypatch.setattr(sim, "run_cell", _fake_cell(acc, kill_at=1e-2))
    out = tmp_path / "tuned" / "t.yaml"
    with pytest.raises(KeyboardInterrupt):
        run_tune(grid, "t.yaml", spec, out, storage=f"sqlite:///{tmp_path}/first.db")
    doc = yaml.safe_load(out.read_text())
    assert "chosen" not in doc or not doc["chosen"]
    assert doc["in_progress"]["bbc_news"]["1.0"]["full"] == 2
    kept = pd.read_csv(out.with_name("t_trials.csv"))
    assert sorted(kept.lr) == pytest.approx([1e-4, 1e-3]) and set(kept.seed) == {0}

    calls: list = []
    monkeypatch.setattr(sim, "run_cell", _fake_cell(acc, calls))
    run_tune(grid, "t.yaml", spec, out, storage=f"sqlite:///{tmp_path}/fresh.db")
    assert sorted((c[1], c[3]) for c in calls) == [(0, 1e-2), (1, 1e-4), (1, 1e-3), (1, 1e-2)]
    again = yaml.safe_load(out.read_text())
    assert again["chosen"]["bbc_news"]["1.0"]["full"] == pytest.approx(1e-3) and "in_progress" not in again
    rows = pd.read_csv(out.with_name("t_trials.csv"))
    assert len(rows) == 6 and rows[rows.seed == 0].value.round(4).tolist() == [0.5, 0.7, 0.6]


def test_a_record_written_midway_keeps_the_choices_of_same_run_groups(tmp_path, monkeypatch):
    """centralized ignores the partition: its second partition shares the first's choice, also in a
    record a resumed run writes before any group of its own finishes."""

    def run_cell(cell, on_round=None, progress=False, **k):
        if cell.method.name == "full":  # killed in full's first trial, every time
            raise KeyboardInterrupt
        for r in range(cell.fl.rounds):
            on_round({"round": r, "accuracy": 0.5 + cell.fl.lr})
        return sim.CellResult("ok", [], [], [], {})

    monkeypatch.setattr(sim, "run_cell", run_cell)
    grid = _grid(tmp_path, methods=[{"name": "centralized"}, {"name": "full"}])
    spec = TuneSpec(seeds=(0, 1), lrs=(1e-4, 1e-3), max_extend=0, prune=False)
    out = tmp_path / "tuned" / "t.yaml"
    for i in range(2):  # the second time on a fresh machine, from the committed record
        with pytest.raises(KeyboardInterrupt):
            run_tune(grid, "t.yaml", spec, out, storage=f"sqlite:///{tmp_path}/m{i}.db")
        chosen = yaml.safe_load(out.read_text())["chosen"]["bbc_news"]
        assert chosen["0.5"]["centralized"] == chosen["1.0"]["centralized"] == pytest.approx(1e-3), i


def test_trials_a_stopped_run_had_queued_are_not_trials(tmp_path, monkeypatch):
    """Killed after queueing its lrs (Optuna's WAITING trials, no params yet): the resumed run neither
    crashes on them nor records them, and tries every lr once."""
    from fl_core.tune import Group, _study, groups, prune_from, study_name

    grid = _grid(tmp_path, methods=[{"name": "full"}], alphas=[1.0])
    spec = TuneSpec(seeds=(0, 1), lrs=(1e-4, 1e-3), max_extend=0, prune=False)
    storage = f"sqlite:///{tmp_path}/t.db"
    g: Group = groups(grid, spec)[0]
    queued = _study(storage, study_name(grid, g, 0, spec), spec.lrs, prune_from(grid.fl.rounds))
    for lr in spec.lrs:
        queued.enqueue_trial({"lr": lr})  # then the process died
    calls: list = []
    monkeypatch.setattr(sim, "run_cell", _fake_cell(lambda lr, s, a: lr, calls))
    out = run_tune(grid, "t.yaml", spec, tmp_path / "t.yaml", storage=storage)
    trials = pd.read_csv(out.with_name("t_trials.csv"))
    assert len(trials) == 4 and trials.lr.notna().all() and set(trials.state) == {"complete"}
    assert sorted((c[1], c[3]) for c in calls) == [(0, 1e-4), (0, 1e-3), (1, 1e-4), (1, 1e-3)]


def test_a_group_whose_worker_failed_is_logged_and_the_others_are_recorded(caplog):
    from concurrent.futures import Future
    from types import SimpleNamespace

    from fl_core.tune_record import collect

    ok, bad = Future(), Future()
    ok.set_result([{"lr": 1e-4}])
    bad.set_exception(TypeError("float() argument must be ... not 'NoneType'"))
    futures = {ok: SimpleNamespace(name="a/1.0/full"), bad: SimpleNamespace(name="a/1.0/head")}
    finished = []
    collect([bad, ok], futures, lambda g, rows: finished.append((g.name, rows)))
    assert finished == [("a/1.0/full", [{"lr": 1e-4}])] and futures == {}
    assert "tuning a/1.0/head failed; the other groups go on" in caplog.text


def test_dry_run_says_what_a_resumed_run_has_left_and_its_wall_time(tmp_path, monkeypatch):
    """After one of two groups is tuned, the record's own trial wall times price the other's trials."""
    from fl_core.tune_record import remaining

    monkeypatch.setattr(sim, "run_cell", _fake_cell(lambda lr, s, a: lr))
    grid = _grid(tmp_path)
    spec = TuneSpec(seeds=(0, 1), alphas=(1.0,), lrs=(1e-4, 1e-2), max_extend=0)
    out = tmp_path / "tuned" / "t.yaml"
    run_tune(grid, "t.yaml", spec, out, storage=f"sqlite:///{tmp_path}/t.db", methods=["full"])
    csv = out.with_name("t_trials.csv")
    pd.read_csv(csv).assign(wall_s=[1800.0, 3600.0, 5400.0, 7200.0]).to_csv(csv, index=False)
    text = remaining(grid, spec, out, jobs=2)
    assert "1 of 2 groups chosen; 1 to tune, 4 trials before edge extensions (0 kept" in text
    # head has no trial yet: priced at the mean of all recorded ones, 4 x 4500 s = 5 h
    assert "about 5.0 h of trial cells" in text and "2.5 h wall with --jobs 2" in text
