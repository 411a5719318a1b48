"""Paper claims: matching methods, pairing by seed, verdicts; the default claims file never crashes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from scipy import stats

from fl_core.config import ConfigError
from fl_core.report.claims import Claim, MethodRef, evaluate_claim, evaluate_claims, load_claims, resolve

FIXTURE_CLAIMS = Path(__file__).resolve().parent / "fixtures" / "claims.yaml"
DEFAULT_CLAIMS = Path(__file__).resolve().parents[2] / "configs" / "claims.yaml"


@pytest.fixture(scope="module")
def evaluated(fixture_results):
    return evaluate_claims(fixture_results, load_claims(FIXTURE_CLAIMS))


def _verdict(summary, cid):
    return summary[summary.claim == cid].verdict.iloc[0]


def test_fixture_claims_get_each_verdict(evaluated):
    summary, _ = evaluated
    assert _verdict(summary, "fedtlu-beats-random") == "supported"
    # not supported at alpha 0.1; too few seeds at 1.0 (head failed in seed 1): mixed
    assert _verdict(summary, "head-beats-full").startswith("mixed: 0 supported, 1 not supported")
    assert _verdict(summary, "top2-noninferior-cheaper") == "supported"
    assert _verdict(summary, "suffix-beats-lora") == "supported"
    assert _verdict(summary, "missing-method") == "not evaluated: fibecfed not in grid"


def test_a_claim_with_one_seed_is_inconclusive(evaluated):
    summary, detail = evaluated
    assert _verdict(summary, "selective-one-seed") == "inconclusive: too few seeds (n=1)"
    rows = detail[detail.claim == "selective-one-seed"]
    assert list(rows.n) == [1, 1] and set(rows.verdict) == {"inconclusive: too few seeds (n=1)"}


def test_pairs_are_by_seed_and_failed_cells_drop_out(fixture_results, evaluated):
    _, detail = evaluated
    row = detail[(detail.claim == "fedtlu-beats-random")].iloc[0]
    c = fixture_results.cells
    a = c[(c.label == "fedtlu") & (c.alpha == "0.1")].sort_values("seed").final_accuracy.to_numpy()
    b = c[(c.label == "random-3-server") & (c.alpha == "0.1")].sort_values("seed").final_accuracy.to_numpy()
    assert row.n == 3 and row.seeds == "0 1 2" and row.alpha == "0.1"
    assert row.p_t == pytest.approx(stats.ttest_rel(a, b, alternative="greater").pvalue)
    assert row.p_wilcoxon == pytest.approx(stats.wilcoxon(a - b, alternative="greater").pvalue)
    assert row.mean_diff == pytest.approx((a - b).mean())
    # head failed in seed 1 at alpha 1.0: only seeds 0 and 2 pair up, and that is too few
    hf = detail[(detail.claim == "head-beats-full") & (detail.alpha == "1.0")].iloc[0]
    assert hf.n == 2 and hf.seeds == "0 2" and "seed 1: head failed" in hf.notes
    assert hf.verdict == "inconclusive: too few seeds (n=2)"


def test_method_matched_by_name_and_params(fixture_results):
    assert resolve(fixture_results, MethodRef(name="top_k", params={"k": 2})) == ("top-2", "")
    assert resolve(fixture_results, MethodRef(name="top_k", params={"k": 5}))[0] is None
    lab, why = resolve(fixture_results, MethodRef(name="tiny"))
    assert lab is None and "ambiguous" in why and "tiny-0.25" in why


def test_partitions_that_differ_are_not_paired(fixture_results):
    res = fixture_results.filter(label=["fedtlu", "random-3-server"], alpha="0.1")
    res.cells.loc[(res.cells.label == "fedtlu") & (res.cells.seed == 0), "partition_sha"] = "other"
    claim = Claim(
        id="x", paper="p", claim="c", a="fedtlu", b="random-3-server", tests=[{"metric": "final_accuracy"}]
    )
    (row,) = evaluate_claim(res, claim)
    assert row["n"] == 2 and "partitions differ" in row["notes"]


def test_unknown_metric_is_not_evaluated(fixture_results):
    claim = Claim(id="x", paper="p", claim="c", a="full", b="head", tests=[{"metric": "accuracy_at_round_9"}])
    (row,) = evaluate_claim(fixture_results, claim)
    assert row["verdict"].startswith("not evaluated: unknown metric accuracy_at_round_9")


def test_default_claims_file_runs_and_reports_missing_methods(fixture_results):
    claims = load_claims(DEFAULT_CLAIMS)
    ids = {c.id for c in claims.claims}
    assert {
        "fedtlu-beats-random",
        "selective-beats-heuristics",
        "fibecfed-lora-accuracy-less-compute",
        "suffix-beats-lora-memory-budget",
    } <= ids
    summary, detail = evaluate_claims(fixture_results, claims)
    v = dict(zip(summary.claim, summary.verdict, strict=True))
    assert v["fedtlu-beats-random"] == "supported"  # both labels are in the fixture
    assert v["fibecfed-lora-accuracy-less-compute"] == "not evaluated: fibecfed not in grid; lora not in grid"
    # selective is there (1 seed) but rgn / snr are not: the claim cannot be supported
    assert v["selective-beats-heuristics"].startswith("inconclusive: not every comparison")
    assert "rgn not in grid" in v["selective-beats-heuristics"]
    # lora-0.5 is skipped at alpha 1.0 (no rank fits): that cell says so, the claim is not supported either way
    mem = detail[detail.claim == "suffix-beats-lora-memory-budget"].set_index("alpha").verdict
    assert mem["0.1"] == "supported"
    assert mem["1.0"] == "not evaluated: lora-0.5 skipped in every seed (no LoRA rank fits the budget)"
    assert v["suffix-beats-lora-memory-budget"].startswith(
        "inconclusive: not every comparison could be evaluated"
    )
    # matched by name + params: the fixture's tiny has no `constrain` param
    assert v["suffix-matches-lora-communication-budget"].startswith(
        "not evaluated: tiny (budget=0.25, constrain="
    )


def test_default_claims_use_labels_of_the_default_grid():
    import yaml

    grid = yaml.safe_load((DEFAULT_CLAIMS.parent / "default.yaml").read_text())
    labels = {m.get("label") or m["name"] for m in grid["methods"]}
    used = set()
    for c in load_claims(DEFAULT_CLAIMS).claims:
        used |= {r.label for r in [c.a, *c.b] if r.label}
    assert {"random-3-server", "top-2", "bottom-2"} <= used & labels


def test_bad_claims_file_is_a_config_error(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text(
        json.dumps(
            {
                "claims": [
                    {
                        "id": "x",
                        "paper": "p",
                        "claim": "c",
                        "a": "full",
                        "b": "head",
                        "tests": [{"metric": "final_accuracy", "direction": "bigger"}],
                    }
                ]
            }
        )
    )
    with pytest.raises(ConfigError, match="direction"):
        load_claims(p)


def test_a_broken_claims_file_does_not_cost_the_tables(fixture_results, tmp_path):
    from fl_core.report.build import write_report

    bad = tmp_path / "claims.yaml"
    bad.write_text("claims: [{id: x}]\n")
    res = fixture_results.filter(label=["full", "head"], alpha="0.1")
    readme, parts = write_report(res, tmp_path / "out", title="t", header=[], claims_path=bad)
    assert "**The claims file could not be used**: invalid claims file" in readme.read_text()
    assert (tmp_path / "out" / "tables" / "accuracy.csv").is_file() and parts["claims"] is None


def test_inconclusive_reads_no_difference_larger_than_the_mde(fixture_results):
    from fl_core.report.stats import min_detectable_effect

    claim = Claim(
        id="x",
        paper="p",
        claim="c",
        a="top-2",
        b="full",
        tests=[{"metric": "final_accuracy", "direction": "noninferior", "margin": 0.05}],
    )
    row = next(r for r in evaluate_claim(fixture_results, claim) if r["alpha"] == "1.0")
    assert (
        row["mde"] == pytest.approx(min_detectable_effect(row["n"], row["sd_diff"], 0.05)) and row["mde"] > 0
    )
    assert row["verdict"].startswith(f"inconclusive: no difference larger than {100 * row['mde']:.2f} pp")


def _row(a, b, direction="greater", margin=0.0):
    from fl_core.report.stats import min_detectable_effect, paired_test

    pt = paired_test(a, b, direction, margin)
    return {**pt.as_dict(), "mde": min_detectable_effect(pt.n, pt.sd_diff), "pct": True, "verdict": "x"}


def test_holm_within_a_claim_and_bounds_that_match_the_verdicts():
    """Alone, a mean gain of 2 pp over 5 seeds (sd 1.58 pp: one-sided p = 0.024) is supported and its
    bound is the one-sided 95% lower bound; two such comparisons in one claim get Holm p = 2 × 0.024 =
    0.047 (still supported); three get 0.071 (inconclusive), and their bounds then cover 0."""
    import numpy as np

    from fl_core.report.claim_verdicts import apply_holm, tally_text

    base = np.array([0.80, 0.82, 0.84, 0.86, 0.88])
    d = np.array([0.01, 0.02, 0.03, 0.00, 0.04])
    p1 = stats.ttest_rel(base + d, base, alternative="greater").pvalue
    assert 0.02 < p1 < 0.025
    (one,) = rows = [_row(base + d, base)]
    apply_holm(rows, 0.05, 3)
    lower = d.mean() - stats.t.ppf(0.95, 4) * d.std(ddof=1) / np.sqrt(5)
    assert one["verdict"] == "supported" and one["bound_lo"] == pytest.approx(lower) and one["p_holm"] == p1
    two = [_row(base + d, base), _row(base + d[::-1], base)]
    apply_holm(two, 0.05, 3)
    assert [r["verdict"] for r in two] == ["supported"] * 2 and two[0]["p_holm"] == pytest.approx(2 * p1)
    three = [*[_row(base + x, base) for x in (d, d[::-1], np.roll(d, 1))], _row(base - 0.1, base + d)]
    apply_holm(three, 0.05, 3)
    v = [r["verdict"] for r in three]
    assert v[3] == "not supported" and three[3]["bound_hi"] < 0
    assert all(x.startswith("inconclusive: no difference larger than") for x in v[:3])
    assert all(r["bound_lo"] < 0 < r["bound_hi"] for r in three[:3])  # the bounds cover 0 exactly then
    assert tally_text(v) == "0 supported, 1 not supported, 3 inconclusive of 4"


def test_claims_are_tallied_and_mixed_when_their_comparisons_disagree(evaluated):
    summary, _ = evaluated
    s = summary.set_index("claim")
    assert s.loc["head-beats-full", "tally"] == "0 supported, 1 not supported, 1 inconclusive of 2"
    assert s.loc["head-beats-full", "verdict"].startswith("mixed: 0 supported, 1 not supported")
    assert s.loc["top2-noninferior-cheaper", "supported"] == 2
    assert s.loc["missing-method", "tally"].endswith("(1 not evaluated)")


def test_fibecfed_is_judged_on_personalized_accuracy_too():
    for path in (DEFAULT_CLAIMS, DEFAULT_CLAIMS.parent / "reference.claims.yaml"):
        metrics = {t.metric for c in load_claims(path).claims if c.a.label == "fibecfed" for t in c.tests}
        assert {"final_accuracy", "final_personal_accuracy"} <= metrics
