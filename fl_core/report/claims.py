"""The seed papers' headline claims, as testable statements on our grid (``configs/claims.yaml``).

A claim compares method ``a`` with each method in ``b`` (a label, or ``{name, params}`` matched
against the grid), on one or more ``tests`` (metric, direction, margin), in the cells it names
(datasets × alphas; all of the grid's by default). Each comparison pairs the two methods' cells by
(dataset, alpha, seed), i.e. on identical partitions, and runs a paired t-test and a Wilcoxon
signed-rank test over the seeds (:func:`fl_core.report.stats.paired_test`).

Verdicts, per comparison, with Holm's correction across the claim's comparisons
(:mod:`fl_core.report.claim_verdicts`): ``supported`` (Holm-significant in the claimed direction),
``not supported`` (Holm-significant in the opposite direction), ``inconclusive: …`` (neither, or
fewer than ``min_seeds`` pairs), ``not evaluated: …`` (a method is not in the grid, a metric
unknown). Per claim: a tally ("6 supported, 3 not supported, 7 inconclusive of 16"); the claim reads
supported / not supported / inconclusive when all its comparisons agree, else ``mixed``.

A claim names the metric(s) it is judged on in ``tests``; several tests (e.g. global and
personalized accuracy) are one family for Holm and are tallied together and per metric.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd

from fl_core.claims_file import (  # noqa: F401  (re-exported)
    MIN_SEEDS,
    CellSpec,
    Claim,
    ClaimsFile,
    ClaimTest,
    MethodRef,
    load_claims,
)
from fl_core.metrics import CLAIMABLE, DERIVED, SUMMARY
from fl_core.report.claim_verdicts import apply_holm, kind, tally, tally_text
from fl_core.report.load import Results, alpha_str
from fl_core.report.partitions import partition_label
from fl_core.report.stats import min_detectable_effect, paired_test, verdict
from fl_core.report.tables import FLOAT_FORMAT, val_selected_accuracy

#: metric → higher is better? (cells columns; ``acc_at_val_round`` is computed from rounds.csv)
METRICS = CLAIMABLE


def resolve(res: Results, ref: MethodRef) -> tuple[str | None, str]:
    """(label in the grid, or None, and why not)."""
    if ref.label:
        return (ref.label, "") if ref.label in res.labels else (None, f"{ref.label} not in grid")
    hits = []
    for lab in res.labels:
        rows = res.cells[res.cells.label == lab]
        if ref.name in set(rows.method):
            p = json.loads(rows.params_json.iloc[0])
            if all(str(p.get(k)) == str(v) for k, v in ref.params.items()):
                hits.append(lab)
    if len(hits) == 1:
        return hits[0], ""
    if not hits:
        return None, f"{ref.text()} not in grid"
    return None, f"{ref.text()} is ambiguous (matches {', '.join(hits)})"


def _metric(res: Results, rows: pd.DataFrame, metric: str) -> pd.Series:
    if metric == "acc_at_val_round":
        return pd.Series(
            [val_selected_accuracy(res, h) for h in rows.config_hash], index=rows.index, dtype=float
        )
    return rows[metric].astype(float)


def _pairs(res: Results, la: str, lb: str, d: str, a: str, metric: str) -> tuple[pd.DataFrame, list[str]]:
    """Seeds where both cells finished normally with a finite metric on the same partition."""
    c = res.cells[(res.cells.dataset == d) & (res.cells.alpha == a)]
    A = c[c.label == la].set_index("seed")
    B = c[c.label == lb].set_index("seed")
    notes = []
    rows = []
    for s in sorted(set(A.index) | set(B.index)):
        if s not in A.index or s not in B.index:
            notes.append(f"seed {s}: only one method has it")
            continue
        ra, rb = A.loc[[s]], B.loc[[s]]
        sa, sb = ra.status.iloc[0], rb.status.iloc[0]
        if sa != "ok" or sb != "ok":
            notes.append(
                f"seed {s}: " + ", ".join(f"{lab} {st}" for lab, st in ((la, sa), (lb, sb)) if st != "ok")
            )
            continue
        pa, pb = ra.partition_sha.iloc[0], rb.partition_sha.iloc[0]
        if pa and pb and pa != pb:
            notes.append(f"seed {s}: partitions differ, not paired")
            continue
        va, vb = float(_metric(res, ra, metric).iloc[0]), float(_metric(res, rb, metric).iloc[0])
        if not (math.isfinite(va) and math.isfinite(vb)):
            notes.append(f"seed {s}: {metric} not recorded")
            continue
        rows.append({"seed": s, "a": va, "b": vb})
    return pd.DataFrame(rows, columns=["seed", "a", "b"]), notes


def _never_ran(res: Results, labels: tuple[str, str], d: str, a: str) -> str | None:
    c = res.cells[(res.cells.dataset == d) & (res.cells.alpha == a)]
    for lab in labels:
        g = c[c.label == lab]
        if len(g) and (g.status != "ok").all():
            st = "/".join(dict.fromkeys(g.status))
            reasons = "; ".join(dict.fromkeys(r for r in g.reason if r))
            return f"not evaluated: {lab} {st} in every seed" + (f" ({reasons})" if reasons else "")
    return None


def _cells(res: Results, spec: CellSpec) -> list[tuple[str, str]]:
    ds = res.datasets if spec.datasets is None else [d for d in res.datasets if d in spec.datasets]
    want = None if spec.alphas is None else {alpha_str(x) for x in spec.alphas}
    al = res.alphas if want is None else [a for a in res.alphas if a in want]
    return [(d, a) for d in ds for a in al]


def evaluate_claim(res: Results, claim: Claim, level: float = 0.05, min_seeds: int = MIN_SEEDS) -> list[dict]:
    """One row per (b method, test, dataset, alpha) with the paired statistics and a verdict."""
    la, why_a = resolve(res, claim.a)
    cells = _cells(res, claim.cells)
    rows = []
    for bref in claim.b:
        lb, why_b = resolve(res, bref)
        for t in claim.tests:
            base = {
                "claim": claim.id,
                "a": la or claim.a.text(),
                "b": lb or bref.text(),
                "metric": t.metric,
                "direction": t.direction,
                "margin": t.margin if t.direction == "noninferior" else math.nan,
            }
            missing = [w for w in (why_a, why_b) if w]
            if t.metric not in METRICS:
                missing.append(f"unknown metric {t.metric} (allowed: {', '.join(METRICS)})")
            if missing or not cells:
                why = "; ".join(missing) or "none of the claim's cells is in the grid"
                rows.append({**base, "dataset": "", "alpha": "", "n": 0, "verdict": f"not evaluated: {why}"})
                continue
            for d, a in cells:
                p, notes = _pairs(res, la, lb, d, a, t.metric)
                margin = t.margin
                if t.direction == "noninferior" and t.relative and len(p):
                    margin = t.margin * abs(float(p.b.mean()))
                pt = paired_test(p.a.to_numpy(), p.b.to_numpy(), t.direction, margin, METRICS[t.metric])
                v = verdict(pt, level, min_seeds)  # replaced by the Holm verdict below when n >= min_seeds
                mde = min_detectable_effect(pt.n, pt.sd_diff, level)
                if pt.n == 0:  # say why nothing paired when one side never ran (e.g. no LoRA rank fits)
                    v = _never_ran(res, (la, lb), d, a) or v
                rows.append(
                    {
                        **base,
                        "margin": margin if t.direction == "noninferior" else math.nan,
                        "dataset": d,
                        "alpha": a,
                        **pt.as_dict(),
                        "seeds": " ".join(map(str, p.seed)),
                        "mde": mde,
                        "pct": _pct(t.metric),
                        "verdict": v,
                        "notes": "; ".join(notes),
                    }
                )
    apply_holm(rows, level, min_seeds)
    return rows


def _reasons(vs: list[str]) -> str:
    return "; ".join(dict.fromkeys(x for v in vs for x in v.removeprefix("not evaluated: ").split("; ")))


def overall(rows: list[dict]) -> str:
    """The claim's verdict: the common verdict of its comparisons, else ``mixed: <tally>``."""
    vs = [r["verdict"] for r in rows]
    evaluated = [v for v in vs if not v.startswith("not evaluated")]
    if not evaluated:
        return "not evaluated: " + _reasons(vs)
    kinds = {kind(v) for v in evaluated}
    if len(evaluated) < len(vs):
        why = _reasons([v for v in vs if v not in evaluated])
        return f"inconclusive: not every comparison could be evaluated ({why}); {tally_text(vs)}"
    if kinds == {"supported"} or kinds == {"not supported"}:
        return kinds.pop()
    if kinds == {"inconclusive"}:
        return evaluated[0] if len(set(evaluated)) == 1 else "inconclusive"
    return f"mixed: {tally_text(vs)}"


def evaluate_claims(res: Results, claims: ClaimsFile) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(one row per claim with its overall verdict, one row per comparison)."""
    detail, summary = [], []
    for c in claims.claims:
        rows = evaluate_claim(res, c, claims.alpha, claims.min_seeds)
        detail += rows
        counts = tally([r["verdict"] for r in rows])
        summary.append(
            {
                "claim": c.id,
                "paper": c.paper,
                "a": c.a.text(),
                "b": ", ".join(x.text() for x in c.b),
                "metrics": ", ".join(dict.fromkeys(t.metric for t in c.tests)),
                **{k.replace(" ", "_"): n for k, n in counts.items()},
                "comparisons": len(rows),
                "tally": tally_text([r["verdict"] for r in rows]),
                "verdict": overall(rows),
            }
        )
    cols = [
        "claim",
        "dataset",
        "alpha",
        "a",
        "b",
        "metric",
        "direction",
        "margin",
        "n",
        "seeds",
        "mean_a",
        "mean_b",
        "mean_diff",
        "sd_diff",
        "bound_lo",
        "bound_hi",
        "level_claim",
        "level_opposite",
        "mde",
        "d_z",
        "t",
        "p_t",
        "p_holm",
        "p_opposite",
        "p_opposite_holm",
        "w",
        "p_wilcoxon",
        "threshold",
        "alternative",
        "verdict",
        "notes",
    ]
    d = pd.DataFrame(detail)
    for k in cols:
        if k not in d:
            d[k] = "" if k in ("seeds", "notes", "alternative") else math.nan
    return pd.DataFrame(summary), d[cols]


def _pct(metric: str) -> bool:
    """Is ``metric`` a share shown in % (its declared display scale), not e.g. a perplexity?"""
    m = {**SUMMARY, **DERIVED}.get(metric)
    return m.scale == 100 if m else False


def _f(x: float, pct: bool = False, digits: int = 3, unit: str = "pp") -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "—"
    return f"{100 * x:.2f}{'%' if unit == '%' else ' pp'}" if pct else f"{x:.{digits}g}"


def _preamble(claims: ClaimsFile, source: str) -> list[str]:
    a = claims.alpha
    return [
        "# Paper claims, tested on this grid",
        "",
        f"Claims from `{source}`. Each comparison pairs the two methods by (dataset, partition, seed) — the same "
        "seed is the same data partition — over the seeds where both finished normally, and tests the mean "
        "difference a − b against the claim's threshold (0, or −margin for non-inferiority) with a one-sided "
        "paired t-test in the claimed direction and one in the opposite direction.",
        "",
        f"**Verdicts.** Within each claim, Holm's step-down correction is applied across all its comparisons "
        f"(every metric, dataset, partition and method b with at least {claims.min_seeds} pairs), separately to the "
        "claimed-direction and the opposite-direction p-values:",
        "",
        f"- **supported**: Holm-adjusted p < {a:g} in the claimed direction;",
        f"- **not supported**: Holm-adjusted p < {a:g} in the opposite direction (the data exclude the claimed "
        "effect);",
        f"- **inconclusive**: neither, or fewer than {claims.min_seeds} paired seeds;",
        "- **not evaluated**: a method is not in this grid, or never finished.",
        "",
        "**Bounds.** The interval shown, [lower, upper], is made of the two one-sided t bounds the verdict uses, "
        "each at its Holm level (α · p / p_Holm: the level at which the bound clears the threshold exactly when "
        "the Holm-adjusted p is below α). Supported = the interval lies wholly on the claimed side of the threshold; "
        "not supported = wholly on the other side; inconclusive = it covers the threshold. For a single comparison "
        "these are the one-sided 95% bounds (e.g. the 95% lower bound for 'greater').",
        "",
        "**Tallies.** Each claim reports how many of its comparisons are supported, not supported and "
        "inconclusive; it reads supported (or not supported, or inconclusive) only when all agree, else mixed. "
        "Accuracy differences are in percentage points (pp). MDE: the smallest true difference the one-sided "
        f"paired t-test at {a:g} (unadjusted) detects with 80% power given the observed spread of the paired "
        "differences (statsmodels). The one-sided Wilcoxon signed-rank p is reported as a check (with n = 4 it "
        "cannot go below 0.0625); the verdicts use the t-test.",
        "",
    ]


def _bounds(r) -> str:
    pct = _pct(r.metric)
    if not r.n:
        return "—"
    if not (isinstance(r.bound_lo, float) and math.isfinite(r.bound_lo)):
        return _f(r.mean_diff, pct)
    return f"{_f(r.mean_diff, pct)} [{_f(r.bound_lo, pct)}, {_f(r.bound_hi, pct)}]"


def claims_markdown(claims: ClaimsFile, summary: pd.DataFrame, detail: pd.DataFrame, source: str) -> str:
    out = [
        *_preamble(claims, source),
        "| claim | paper | a | b | metrics | tally | verdict |",
        "|---|---|---|---|---|---|---|",
    ]
    for _, r in summary.iterrows():
        out.append(f"| {r.claim} | {r.paper} | {r.a} | {r.b} | {r.metrics} | {r.tally} | **{r.verdict}** |")
    out.append("")
    for c in claims.claims:
        srow = summary[summary.claim == c.id].iloc[0]
        out += [f"## {c.id}: {srow.verdict}", "", f"- paper: {c.paper}", f"- claim: {c.claim}"]
        if c.statement:
            out.append(f"- tested as: {c.statement}")
        tests = "; ".join(
            f"{t.metric} {t.direction}"
            + (f" (margin {t.margin}{' × b' if t.relative else ''})" if t.direction == "noninferior" else "")
            for t in c.tests
        )
        out += [f"- a = `{c.a.text()}`, b = {', '.join(f'`{x.text()}`' for x in c.b)}; tests: {tests}"]
        rows = detail[detail.claim == c.id]
        out.append(f"- tally: {srow.tally}")
        if rows.metric.nunique() > 1:
            for m, g in rows.groupby("metric", sort=False):
                out.append(f"  - {m}: {tally_text(list(g.verdict))}")
        out += [
            "",
            "| dataset | partition | a | b | metric | n | mean a | mean b | a − b [Holm one-sided bounds] | MDE (80% power) "
            "| d_z | p (t) | p (Holm) | p (Wilcoxon) | verdict |",
            "|" + "---|" * 15,
        ]
        for _, r in rows.iterrows():
            pct = _pct(r.metric)
            ma = _f(r.mean_a, pct, unit="%") if r.n else "—"
            mb = _f(r.mean_b, pct, unit="%") if r.n else "—"
            show_notes = isinstance(r.notes, str) and r.notes and not r.verdict.startswith("not evaluated")
            verdict_txt = r.verdict + (f" ({r.notes})" if show_notes else "")
            part = partition_label(r.alpha) if r.alpha != "" else ""
            out.append(
                f"| {r.dataset} | {part} | {r.a} | {r.b} | {r.metric} | {int(r.n)} | {ma} | {mb} | {_bounds(r)} | "
                f"{_f(r.mde, pct) if r.n else '—'} | {_f(r.d_z)} | {_f(r.p_t)} | {_f(r.p_holm)} | {_f(r.p_wilcoxon)} | "
                f"{verdict_txt} |"
            )
        out.append("")
    return "\n".join(out)


def write_claims(res: Results, claims_path: str | Path, out_dir: Path) -> tuple[Path, pd.DataFrame]:
    """``claims.md`` and ``tables/claims.csv`` under ``out_dir``; returns the Markdown path and the summary."""
    claims = load_claims(claims_path)
    summary, detail = evaluate_claims(res, claims)
    (out_dir / "tables").mkdir(parents=True, exist_ok=True)
    detail.to_csv(
        out_dir / "tables" / "claims.csv", index=False, float_format=FLOAT_FORMAT, lineterminator="\n"
    )
    md = out_dir / "claims.md"
    md.write_text(claims_markdown(claims, summary, detail, Path(claims_path).name))
    return md, summary
