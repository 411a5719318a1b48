"""layerbench tune: per-(dataset, method) lr on validation rows only; resumable; never reads test."""

from __future__ import annotations

import pandas as pd
import pytest
import yaml

import fl_core.simulator as sim
from fl_core.config import ConfigError
from fl_core.data.splits import Splits
from fl_core.tune import TuneSpec, hardest_alpha
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


def test_tune_reads_only_validation_rows_and_writes_a_record(tmp_path, poisoned_test):
    grid = _grid(tmp_path)
    spec = TuneSpec(alpha=hardest_alpha(grid), seed=0, lrs=(1e-4, 1e-2), warmup_evals=0, max_extend=0)
    assert spec.alpha == 0.5
    out = run_tune(grid, "t.yaml", spec, tmp_path / "tuned" / "t.yaml")
    doc = yaml.safe_load(out.read_text())
    assert set(doc["chosen"]["bbc_news"]) == {"full", "head"}
    assert all(lr in (1e-4, 1e-2) for lr in doc["chosen"]["bbc_news"].values())
    trials = pd.read_csv(out.with_name("t_trials.csv"))
    assert len(trials) == 4 and set(trials.state) <= {"complete", "pruned"}
    assert trials.val_accuracy.str.split(";").str.len().ge(1).all()
    best = trials[trials.state == "complete"].sort_values("value").groupby("method").tail(1)
    for _, r in best.iterrows():  # the chosen lr is the best completed trial's
        assert doc["chosen"]["bbc_news"][r.method] == r.lr
    assert "chosen lr" in out.with_suffix(".md").read_text()
    # the grid reads it: cells carry the tuned lr
    g2 = _grid(tmp_path, tuned=str(out))
    assert {c.method.display: c.fl.lr for c in g2.cells()} == doc["chosen"]["bbc_news"]
    # resumable: a second call finds every lr done and runs nothing new
    again = run_tune(grid, "t.yaml", spec, tmp_path / "tuned" / "t2.yaml")
    assert len(pd.read_csv(again.with_name("t2_trials.csv"))) == 4


def test_tune_needs_a_validation_split(tmp_path):
    grid = parse_grid(tiny_grid_dict(tmp_path))
    with pytest.raises(ConfigError, match="val_fraction"):
        run_tune(grid, "t.yaml", TuneSpec(alpha=1.0, seed=0, lrs=(1e-4,)), tmp_path / "t.yaml")


def test_the_committed_record_resumes_on_a_fresh_machine(tmp_path, monkeypatch):
    """One study per call (filters), a new DB each time: the record grows, current entries are
    kept without a trial, and a changed setting makes them stale (tuned again)."""
    grid = _grid(tmp_path)
    spec = TuneSpec(alpha=0.5, seed=0, lrs=(1e-4, 1e-2), warmup_evals=0, max_extend=0)
    out = tmp_path / "tuned" / "t.yaml"
    for i, label in enumerate(["full", "head"]):
        run_tune(grid, "t.yaml", spec, out, storage=f"sqlite:///{tmp_path}/db{i}.db", methods=[label])
    doc = yaml.safe_load(out.read_text())
    assert set(doc["chosen"]["bbc_news"]) == {"full", "head"}
    trials = pd.read_csv(out.with_name("t_trials.csv"))
    assert len(trials) == 4 and trials.wall_s.gt(0).all() and trials.tune_key.nunique() == 2

    def no_training(*a, **k):
        raise AssertionError("a current record entry was tuned again")

    monkeypatch.setattr(sim, "run_cell", no_training)
    run_tune(grid, "t.yaml", spec, out, storage=f"sqlite:///{tmp_path}/fresh.db")
    assert yaml.safe_load(out.read_text())["chosen"] == doc["chosen"]
    assert pd.read_csv(out.with_name("t_trials.csv")).equals(trials)

    longer = _grid(tmp_path, fl={**tiny_grid_dict(tmp_path)["fl"], "rounds": 3})
    with pytest.raises(AssertionError, match="tuned again"):
        run_tune(longer, "t.yaml", spec, out, storage=f"sqlite:///{tmp_path}/fresh2.db")


def test_next_lr_walks_the_one_three_ladder_or_the_grids_own_ratio():
    from fl_core.tune import next_lr

    grid = [3e-5, 1e-4, 3e-4, 1e-3, 3e-3]
    assert next_lr(grid, up=True) == pytest.approx(1e-2)
    assert next_lr([*grid, 1e-2], up=True) == pytest.approx(3e-2)
    assert next_lr(grid, up=False) == pytest.approx(1e-5)
    assert next_lr([1e-5, *grid], up=False) == pytest.approx(3e-6)
    assert next_lr([2e-4, 4e-4], up=True) == pytest.approx(8e-4)  # off the ladder: the grid's ratio


def test_extension_only_past_an_edge_that_holds_the_best_and_at_most_max_extend():
    from fl_core.tune import extension

    spec = TuneSpec(alpha=1.0, seed=0, lrs=(1e-4, 1e-3, 1e-2), max_extend=2)
    inner = [(1e-4, "complete", 0.5), (1e-3, "complete", 0.9), (1e-2, "pruned", 0.2)]
    assert extension(inner, spec) is None
    top = [(1e-4, "complete", 0.5), (1e-3, "complete", 0.6), (1e-2, "complete", 0.9)]
    assert extension(top, spec) == pytest.approx(3e-2)
    assert extension([*top, (3e-2, "complete", 0.95)], spec) == pytest.approx(1e-1)
    capped = [*top, (3e-2, "complete", 0.95), (1e-1, "complete", 0.97)]
    assert extension(capped, spec) is None  # two steps past the grid already
    bottom = [(1e-4, "complete", 0.9), (1e-3, "complete", 0.6), (1e-2, "pruned", 0.1)]
    assert extension(bottom, spec) == pytest.approx(3e-5)
    assert extension([(1e-4, "pruned", 0.1), (1e-3, "fail", None)], spec) is None  # nothing completed


def _rising_cell(kill_at: float | None = None):
    """A stand-in ``run_cell`` whose validation accuracy rises with lr up to 3e-2; the first cell at
    ``kill_at`` is killed (KeyboardInterrupt) as a stopped run would be."""
    killed = []

    def run_cell(cell, on_round=None, progress=False, **k):
        if kill_at is not None and cell.fl.lr == pytest.approx(kill_at) and not killed:
            killed.append(cell.fl.lr)
            raise KeyboardInterrupt
        acc = min(cell.fl.lr, 3e-2) * 10
        for r in range(cell.fl.rounds):
            on_round({"round": r, "accuracy": acc})
        return sim.CellResult("ok", [], [], [], {})

    run_cell.killed = killed
    return run_cell


def test_tune_grows_the_grid_past_the_edge_holding_the_best(tmp_path, monkeypatch):
    """A stand-in cell whose validation accuracy rises with lr up to 3e-2: the study tries the grid,
    then 1e-2 and 3e-2 (two steps), and chooses 3e-2; the committed record says so."""
    monkeypatch.setattr(sim, "run_cell", _rising_cell())
    grid = _grid(tmp_path, methods=[{"name": "full"}])
    spec = TuneSpec(alpha=0.5, seed=0, lrs=(1e-4, 1e-3, 3e-3), warmup_evals=0, max_extend=2)
    out = run_tune(grid, "t.yaml", spec, tmp_path / "t.yaml", storage=f"sqlite:///{tmp_path}/t.db")
    trials = pd.read_csv(out.with_name("t_trials.csv"))
    assert sorted(trials.lr) == pytest.approx([1e-4, 1e-3, 3e-3, 1e-2, 3e-2])
    assert yaml.safe_load(out.read_text())["chosen"]["bbc_news"]["full"] == pytest.approx(3e-2)


def test_a_killed_extension_trial_is_tried_again_on_resume(tmp_path, monkeypatch):
    """The run is killed inside the first step past the edge (1e-2): on resume that step is not counted
    as tried, so the study still grows to 3e-2 and chooses it (it used to stop at 3e-3)."""
    fake_run_cell = _rising_cell(kill_at=1e-2)
    killed = fake_run_cell.killed
    monkeypatch.setattr(sim, "run_cell", fake_run_cell)
    grid = _grid(tmp_path, methods=[{"name": "full"}])
    spec = TuneSpec(alpha=0.5, seed=0, lrs=(1e-4, 1e-3, 3e-3), warmup_evals=0, max_extend=2)
    kw = dict(storage=f"sqlite:///{tmp_path}/t.db")
    with pytest.raises(KeyboardInterrupt):
        run_tune(grid, "t.yaml", spec, tmp_path / "t.yaml", **kw)
    out = run_tune(grid, "t.yaml", spec, tmp_path / "t.yaml", **kw)
    assert killed and yaml.safe_load(out.read_text())["chosen"]["bbc_news"]["full"] == pytest.approx(3e-2)
    assert sorted(pd.read_csv(out.with_name("t_trials.csv")).lr) == pytest.approx(
        [1e-4, 1e-3, 3e-3, 1e-2, 3e-2]
    )
