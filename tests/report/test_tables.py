"""Golden files and behaviour of the report's tables, on the committed synthetic store."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest

from fl_core.report.load import load_results
from fl_core.report.tables import accuracy_table, cost_table, si, write_table

GOLDEN = Path(__file__).resolve().parent / "fixtures" / "golden"

GOLDEN_FILES = sorted(p.relative_to(GOLDEN) for p in GOLDEN.rglob("*") if p.is_file())


def test_golden_set_is_complete():
    names = {p.as_posix() for p in GOLDEN_FILES}
    assert {
        "tables/accuracy.csv",
        "tables/accuracy.md",
        "tables/cost.csv",
        "tables/cost.md",
        "tables/claims.csv",
        "claims.md",
    } <= names


@pytest.mark.parametrize("rel", GOLDEN_FILES, ids=[p.as_posix() for p in GOLDEN_FILES])
def test_tables_match_golden_files(fixture_report, rel):
    """Regenerate with `.venv/bin/python tests/report/fixtures/make_store.py --golden` after an intended change."""
    out, _, _ = fixture_report
    assert (out / rel).read_text() == (GOLDEN / rel).read_text(), f"{rel} differs from the golden file"


def test_same_store_gives_byte_identical_tables(fixture_store, tmp_path):
    for run in ("a", "b"):
        res = load_results(fixture_store)  # fresh load: no shared cache
        for t in (accuracy_table(res), cost_table(res)):
            write_table(t, tmp_path / run)
    for f in sorted((tmp_path / "a").iterdir()):
        assert f.read_bytes() == (tmp_path / "b" / f.name).read_bytes(), f.name


def _row(t, label, alpha):
    d = t.data
    return d[(d.label == label) & (d.alpha == alpha)].iloc[0]


def _disp(t, label, alpha):
    d = t.display
    return d[(d.method == label) & (d.alpha == alpha)].iloc[0]


def test_accuracy_numbers_are_mean_std_and_t_interval_over_ok_seeds(fixture_results):
    from scipy import stats

    t = accuracy_table(fixture_results)
    c = fixture_results.cells
    x = c[(c.label == "full") & (c.alpha == "0.1")].final_accuracy.to_numpy()
    row = _row(t, "full", "0.1")
    assert row.final_accuracy_mean == pytest.approx(x.mean())
    assert row.final_accuracy_std == pytest.approx(x.std(ddof=1))
    lo, hi = stats.t.interval(0.95, len(x) - 1, loc=x.mean(), scale=stats.sem(x))
    assert (row.final_accuracy_ci95_lo, row.final_accuracy_ci95_hi) == (pytest.approx(lo), pytest.approx(hi))
    # the diverged seed is not averaged in: 2 of 3 seeds
    rnd = _row(t, "random-3-server", "1.0")
    ok = c[(c.label == "random-3-server") & (c.alpha == "1.0") & (c.status == "ok")].final_accuracy
    assert rnd.seeds_ok == 2 and rnd.final_accuracy_mean == pytest.approx(ok.mean())


def test_unfinished_cells_show_status_and_reason_not_blanks(fixture_results):
    acc, cost = accuracy_table(fixture_results), cost_table(fixture_results)
    skipped = _disp(acc, "lora-0.5", "1.0")
    assert skipped["final acc. (%)"] == "skipped: no LoRA rank fits the budget"
    assert skipped["seeds"] == "0/3 ok; 3 skipped"
    assert _disp(cost, "lora-0.5", "1.0")["client FLOPs (total)"].startswith("skipped")
    failed = _disp(acc, "head", "1.0")
    assert (
        "seed 1: failed (RuntimeError: injected fault)" in failed["notes"]
        and failed["seeds"] == "2/3 ok; 1 failed"
    )
    assert "seed 2: diverged (non-finite loss" in _disp(acc, "random-3-server", "1.0")["notes"]
    for t in (acc, cost):
        values = t.display.drop(columns=["notes", "params"])
        assert not (values == "").any().any(), "a value cell is blank"


def test_no_validation_split_is_said_not_replaced_by_best_test_round(fixture_results):
    t = accuracy_table(fixture_results)
    assert set(t.display["acc. at val.-selected round (%)"]) <= {"no validation split"} | {
        x for x in t.display["acc. at val.-selected round (%)"] if x.startswith("skipped")
    }
    assert t.data.acc_at_val_round_mean.isna().all()


def _val_store(tmp_path, val_fraction: float, with_val: bool):
    """One method, 3 seeds; test accuracy peaks at round 1, validation accuracy at round 2."""
    from fl_core.config import DataConfig, FLConfig, MethodSpec, RunConfig
    from fl_core.store import ResultStore

    store = ResultStore(tmp_path)
    for seed in range(3):
        cfg = RunConfig(
            dataset="bbc_news",
            alpha=1.0,
            method=MethodSpec(name="full"),
            seed=seed,
            model="tiny-bert",
            fl=FLConfig(num_clients=2, clients_per_round=1, rounds=3),
            data=DataConfig(val_fraction=val_fraction),
        )
        rounds = [
            {"round": r, "train_loss": 1.0, "accuracy": a, "macro_f1": a, "loss": 1.0}
            for r, a in enumerate([0.5, 0.9, 0.7])
        ]
        if with_val:
            for r, v in zip(rounds, [0.4, 0.6, 0.8 + 0.01 * seed], strict=True):
                r["val_accuracy"] = v
        store.write(
            cfg,
            {"status": "ok", "summary": {"final_accuracy": 0.7, "best_accuracy": 0.9}},
            {"rounds": rounds, "costs": [], "selections": []},
            {"partition": {}},
        )
    return load_results(tmp_path)


def test_val_selected_round_uses_validation_metrics(tmp_path):
    res = _val_store(tmp_path, 0.1, with_val=True)
    row = accuracy_table(res).data.iloc[0]
    assert row.acc_at_val_round_mean == pytest.approx(0.7)  # round 2 (best val), not 0.9 (best test)
    assert row.acc_at_val_round_note == ""


def test_val_split_without_metrics_says_so(tmp_path):
    res = _val_store(tmp_path, 0.1, with_val=False)
    d = accuracy_table(res).display.iloc[0]
    assert d["acc. at val.-selected round (%)"] == "no validation metrics recorded"


def test_time_to_target_counts_rounds_flops_and_bytes_until_first_hit(fixture_results, make_store_module):
    m = make_store_module
    t = cost_table(fixture_results)
    full = _row(t, "full", "0.1")
    # full reaches 95% of its own final mean at the 3rd evaluated round (0.99 of final) in every seed
    assert full.target_accuracy == pytest.approx(0.95 * full_mean(fixture_results))
    assert full.seeds_reached_target == 3 and full.rounds_to_target_mean == 3
    per_round = m.PER_ROUND * (m.FWD_FLOPS + m.FULL_BWD_FLOPS)
    assert full.client_flops_to_target_mean == pytest.approx(3 * per_round)
    assert full.bytes_up_to_target_mean == pytest.approx(3 * m.PER_ROUND * 4 * 22_000_000)
    head = _row(t, "head", "0.1")
    assert head.seeds_reached_target == 0 and math.isnan(head.rounds_to_target_mean)
    assert _disp(t, "head", "0.1")["rounds to target"] == "not reached"


def full_mean(res):
    c = res.cells
    return c[(c.label == "full") & (c.alpha == "0.1")].final_accuracy.mean()


def test_no_reference_method_gives_no_target(fixture_results):
    res = fixture_results.filter(label=["head", "top-2"])
    t = cost_table(res)
    assert t.data.target_accuracy.isna().all()
    assert "`full` not in the grid" in next(iter(t.group_notes.values()))
    assert set(t.display["rounds to target"]) == {"no target"}


def test_peak_memory_column_only_when_recorded(fixture_results):
    assert "peak client memory" in cost_table(fixture_results).display
    assert "peak_memory_bytes_mean" not in cost_table(fixture_results.filter(label=["full", "head"])).data


def test_si_format():
    assert si(93.7e9, "FLOP") == "93.7 GFLOP" and si(59_179_088, "B") == "59.2 MB" and si(0, "B") == "0 B"
    assert si(float("nan")) == "—"


def test_csv_is_numbers(fixture_report):
    out, _, _ = fixture_report
    d = pd.read_csv(out / "tables" / "accuracy.csv")
    assert pd.api.types.is_float_dtype(d.final_accuracy_mean) and len(d) == 20  # 10 methods x 2 alphas


def test_the_legend_says_when_final_numbers_are_a_window_mean(fixture_results):
    import dataclasses

    from fl_core.report.tables import accuracy_table

    assert any("at the last round" in x for x in accuracy_table(fixture_results).legend)
    cells = fixture_results.cells.assign(final_window=3)
    legend = accuracy_table(dataclasses.replace(fixture_results, cells=cells)).legend
    assert any("mean of its last 3 evaluations (`fl.final_window`)" in x for x in legend)
