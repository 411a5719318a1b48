"""Loading a store: by its files, by a grid (missing cells shown), and with repeated cells."""

from __future__ import annotations

from fl_core.config import FLConfig, MethodSpec, RunConfig
from fl_core.report.load import load_results
from fl_core.store import ResultStore


def _cell(rounds: int, seed: int = 0) -> RunConfig:
    return RunConfig(
        dataset="bbc_news",
        alpha=0.5,
        method=MethodSpec(name="full"),
        seed=seed,
        model="tiny-bert",
        fl=FLConfig(num_clients=2, clients_per_round=1, rounds=rounds),
    )


def test_store_view_keeps_the_latest_of_repeated_cells(tmp_path):
    store = ResultStore(tmp_path)
    store.write(
        _cell(3), {"status": "failed", "reason": "old bug", "finished_at": "2025-01-01T00:00:00"}, {}, {}
    )
    store.write(
        _cell(4),
        {"status": "ok", "finished_at": "2025-02-01T00:00:00", "summary": {"final_accuracy": 0.8}},
        {"rounds": [{"round": 0, "accuracy": 0.8}]},
        {},
    )
    res = load_results(tmp_path)
    assert (
        len(res.cells) == 1 and res.cells.status.iloc[0] == "ok" and res.cells.final_accuracy.iloc[0] == 0.8
    )
    both = load_results(tmp_path, latest_only=False)
    assert len(both.cells) == 2 and both.cells.setting.nunique() == 2


def test_views_and_long_tables(fixture_results):
    sub = fixture_results.filter(alpha=0.1, label=["full", "head"], status="ok")
    assert sub.labels == ["full", "head"] and sub.alphas == ["0.1"] and len(sub.cells) == 6
    r = sub.long("rounds")
    assert set(r.label) == {"full", "head"} and len(r) == 6 * 4
    assert list(r.columns[:6]) == ["dataset", "alpha", "label", "method", "seed", "config_hash"]
    assert fixture_results.method_params("random-3-server") == {"k": 3, "mode": "server"}


def test_alpha_spelling_is_one(fixture_results):
    assert fixture_results.alphas == ["0.1", "1.0"]
    assert len(fixture_results.filter(alpha="1.0").cells) == len(fixture_results.filter(alpha=1).cells) > 0
