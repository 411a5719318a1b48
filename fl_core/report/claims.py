"""The seed papers' headline claims, as testable statements on our grid (``configs/claims.yaml``).

A claim compares method ``a`` with each method in ``b`` (a label, or ``{name, params}`` matched
against the grid), on one or more ``tests`` (metric, direction, margin), in the cells it names
(datasets × alphas; all of the grid's by default). Each comparison pairs the two methods' cells by
(dataset, alpha, seed), i.e. on identical partitions, and runs a paired t-test and a Wilcoxon
signed-rank test over the seeds (:func:`fl_core.report.stats.paired_test`).

Verdicts, per comparison: ``supported`` (one-sided paired t-test p < alpha), ``not supported`` (the
opposite one-sided bound is on the wrong side of the threshold), ``inconclusive: …`` (neither, or
fewer than 3 pairs), ``not evaluated: …`` (a method is not in the grid, a metric unknown). A claim is
supported only if every comparison is; not supported if any is not; otherwise inconclusive (or not
evaluated when none could be evaluated).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Literal

import pandas as pd
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from fl_core.config import ConfigError
from fl_core.metrics import CLAIMABLE
from fl_core.report.load import Results, alpha_str
from fl_core.report.stats import min_detectable_effect, paired_test, verdict
from fl_core.report.tables import FLOAT_FORMAT, val_selected_accuracy

#: metric → higher is better? (cells columns; ``acc_at_val_round`` is computed from rounds.csv)
METRICS = CLAIMABLE
MIN_SEEDS = 3


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MethodRef(_Strict):
    """A method of the grid: by ``label``, or by registered ``name`` plus a subset of its ``params``."""

    label: str | None = None
    name: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)

    def text(self) -> str:
        if self.label:
            return self.label
        return self.name + (
            f" ({', '.join(f'{k}={v}' for k, v in sorted(self.params.items()))})" if self.params else ""
        )


class ClaimTest(_Strict):
    metric: str
    direction: Literal["greater", "less", "noninferior"] = "greater"
    margin: float = Field(
        0.0, ge=0, description="non-inferiority margin, in the metric's units (accuracy: 0..1)"
    )
    relative: bool = Field(False, description="margin is a fraction of b's mean")


class CellSpec(_Strict):
    datasets: list[str] | None = None  # None: every dataset of the grid
    alphas: list[float | str] | None = None  # None: every alpha of the grid


def _ref(v: Any) -> Any:
    return {"label": v} if isinstance(v, str) else v


class Claim(_Strict):
    id: str
    paper: str
    claim: str  # the paper's claim, in words
    statement: str = ""  # how we test it on our grid, in words
    a: MethodRef
    b: list[MethodRef]
    tests: list[ClaimTest] = Field(min_length=1)
    cells: CellSpec = CellSpec()

    @field_validator("a", mode="before")
    @classmethod
    def _a(cls, v):
        return _ref(v)

    @field_validator("b", mode="before")
    @classmethod
    def _b(cls, v):
        return [_ref(x) for x in (v if isinstance(v, list) else [v])]


class ClaimsFile(_Strict):
    alpha: float = Field(0.05, gt=0, lt=1, description="significance level of the one-sided tests")
    min_seeds: int = Field(MIN_SEEDS, ge=2)
    claims: list[Claim]


def load_claims(path: str | Path) -> ClaimsFile:
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
        return ClaimsFile.model_validate(raw)
    except FileNotFoundError:
        raise ConfigError(f"claims file not found: {path}") from None
    except (yaml.YAMLError, ValidationError) as err:
        raise ConfigError(f"invalid claims file {path}: {err}") from None


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
                v = verdict(pt, level, min_seeds)
                mde = min_detectable_effect(pt.n, pt.sd_diff, level)
                if v.startswith("inconclusive: the difference") and math.isfinite(mde):
                    v = f"inconclusive: no difference larger than {_f(mde, _pct(t.metric))} ({v.split('(')[-1]}"
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
                        "verdict": v,
                        "notes": "; ".join(notes),
                    }
                )
    return rows


def _reasons(vs: list[str]) -> str:
    return "; ".join(dict.fromkeys(x for v in vs for x in v.removeprefix("not evaluated: ").split("; ")))


def overall(rows: list[dict]) -> str:
    vs = [r["verdict"] for r in rows]
    evaluated = [v for v in vs if not v.startswith("not evaluated")]
    if not evaluated:
        return "not evaluated: " + _reasons(vs)
    if any(v == "not supported" for v in evaluated):
        return "not supported"
    if len(evaluated) < len(vs):
        return f"inconclusive: not every comparison could be evaluated ({_reasons([v for v in vs if v not in evaluated])})"
    if all(v == "supported" for v in evaluated):
        return "supported"
    first = next(v for v in evaluated if v != "supported")
    return (
        first
        if len(set(evaluated)) == 1
        else f"inconclusive: {sum(v != 'supported' for v in evaluated)} of "
        f"{len(evaluated)} comparisons inconclusive (e.g. {first.removeprefix('inconclusive: ')})"
    )


def evaluate_claims(res: Results, claims: ClaimsFile) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(one row per claim with its overall verdict, one row per comparison)."""
    detail, summary = [], []
    for c in claims.claims:
        rows = evaluate_claim(res, c, claims.alpha, claims.min_seeds)
        detail += rows
        summary.append(
            {
                "claim": c.id,
                "paper": c.paper,
                "a": c.a.text(),
                "b": ", ".join(x.text() for x in c.b),
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
        "ci_lo",
        "ci_hi",
        "mde",
        "d_z",
        "t",
        "p_t",
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
    return "accuracy" in metric or "f1" in metric


def _f(x: float, pct: bool = False, digits: int = 3, unit: str = "pp") -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "—"
    return f"{100 * x:.2f}{'%' if unit == '%' else ' pp'}" if pct else f"{x:.{digits}g}"


def claims_markdown(claims: ClaimsFile, summary: pd.DataFrame, detail: pd.DataFrame, source: str) -> str:
    out = [
        "# Paper claims, tested on this grid",
        "",
        f"Claims from `{source}`. Each comparison pairs the two methods by (dataset, alpha, seed) — the same "
        "seed is the same data partition — over the seeds where both finished normally, and reports the mean "
        "difference a − b with its 95% t-interval, Cohen's d_z (mean / sd of the differences), the one-sided "
        "paired t-test and the one-sided Wilcoxon signed-rank test (scipy).",
        "",
        f"Verdicts: **supported** = one-sided paired t-test p < {claims.alpha} in the claimed direction; "
        "**not supported** = the opposite one-sided bound lies on the wrong side of the threshold; "
        f"**inconclusive** = neither, or fewer than {claims.min_seeds} paired seeds; **not evaluated** = a method "
        "is not in this grid. A claim is supported only if all its comparisons are. Accuracy differences are "
        "in percentage points (pp). MDE: the minimum detectable effect, the smallest true difference the "
        f"one-sided paired t-test at {claims.alpha} would detect with 80% power given the observed spread of the "
        'paired differences (statsmodels); an inconclusive comparison reads "no difference larger than MDE". '
        "With few seeds the Wilcoxon test cannot reach p < 0.05 (n = 4: p ≥ 0.0625); "
        "it is reported as a check, the verdict uses the t-test. The one-sided test at 0.05 matches a one-sided 95% "
        "bound, so a supported claim's two-sided 95% CI can still touch the threshold when 0.025 < p < 0.05.",
        "",
        "| claim | paper | a | b | verdict |",
        "|---|---|---|---|---|",
    ]
    for _, r in summary.iterrows():
        out.append(f"| {r.claim} | {r.paper} | {r.a} | {r.b} | **{r.verdict}** |")
    out.append("")
    for c in claims.claims:
        v = summary[summary.claim == c.id].verdict.iloc[0]
        out += [f"## {c.id}: {v}", "", f"- paper: {c.paper}", f"- claim: {c.claim}"]
        if c.statement:
            out.append(f"- tested as: {c.statement}")
        tests = "; ".join(
            f"{t.metric} {t.direction}"
            + (f" (margin {t.margin}{' × b' if t.relative else ''})" if t.direction == "noninferior" else "")
            for t in c.tests
        )
        out += [f"- a = `{c.a.text()}`, b = {', '.join(f'`{x.text()}`' for x in c.b)}; tests: {tests}", ""]
        rows = detail[detail.claim == c.id]
        out += [
            "| dataset | alpha | a | b | metric | n | mean a | mean b | a − b [95% CI] | MDE (80% power) | d_z | p (t) "
            "| p (Wilcoxon) | verdict |",
            "|" + "---|" * 14,
        ]
        for _, r in rows.iterrows():
            pct = _pct(r.metric)
            diff = "—" if not r.n else (f"{_f(r.mean_diff, pct)} [{_f(r.ci_lo, pct)}, {_f(r.ci_hi, pct)}]")
            ma = _f(r.mean_a, pct, unit="%") if r.n else "—"
            mb = _f(r.mean_b, pct, unit="%") if r.n else "—"
            show_notes = isinstance(r.notes, str) and r.notes and not r.verdict.startswith("not evaluated")
            verdict_txt = r.verdict + (f" ({r.notes})" if show_notes else "")
            out.append(
                f"| {r.dataset} | {r.alpha} | {r.a} | {r.b} | {r.metric} | {int(r.n)} | {ma} | {mb} | {diff} | "
                f"{_f(r.mde, pct) if r.n else '—'} | {_f(r.d_z)} | {_f(r.p_t)} | {_f(r.p_wilcoxon)} | {verdict_txt} |"
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
