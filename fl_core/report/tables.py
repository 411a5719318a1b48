"""The report's tables: per dataset × alpha, one row per method, as CSV (numbers), Markdown and LaTeX.

- ``accuracy``: final accuracy and macro-F1 on the global test split (mean ± std over seeds and the
  95% t-interval), the accuracy at the round a validation split would choose (only when the store
  has validation metrics: the report never selects a round on the test split), and personalized
  accuracy (the clients' own test splits, pooled).
- ``cost``: rounds, client FLOPs and bytes uploaded until the global test accuracy first reaches a
  target (default 95% of ``full``'s final mean accuracy in that dataset × alpha), the totals of
  client FLOPs and bytes up/down over the run, and the peak client memory where the store has it.

A method whose cells did not all finish normally says so (``seeds`` and ``notes``); when no seed
finished, its value cells carry the status and reason (``failed: …``, ``skipped: …``), never a blank.
Output is deterministic: the same store gives byte-identical files.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from fl_core.metrics import ACCURACY, MACRO_F1, PERPLEXITY, final, personal
from fl_core.report.load import Results
from fl_core.report.partitions import partition_label
from fl_core.report.stats import Summary, summarize

FLOAT_FORMAT = "%.6g"
MAX_REASON = 80


@dataclass
class Table:
    name: str
    title: str
    data: pd.DataFrame  # numbers (CSV): dataset, alpha, label, ... one row per method
    display: pd.DataFrame  # formatted strings (Markdown / LaTeX): dataset, alpha, method, ...
    legend: list[str] = field(default_factory=list)  # what the columns mean
    group_notes: dict[tuple[str, str], str] = field(default_factory=dict)  # one line per dataset × alpha


# -- formatting ---------------------------------------------------------------------------------
def _short(text: str, n: int = MAX_REASON) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= n else text[: n - 1] + "…"


def fmt_pct(s: Summary, ci: bool = True) -> str:
    if s.n == 0:
        return ""
    if s.n == 1:
        return f"{100 * s.mean:.1f} (1 seed)"
    out = f"{100 * s.mean:.1f} ± {100 * s.std:.1f}"
    return out + (f" [{100 * s.ci_lo:.1f}, {100 * s.ci_hi:.1f}]" if ci else "")


def si(x: float, unit: str = "") -> str:
    """3 significant digits with an SI prefix: ``93.7G``, ``59.2 MB``."""
    if x is None or not math.isfinite(x):
        return "—"
    if x == 0:
        return f"0{' ' + unit if unit else ''}"
    prefixes = [(1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k"), (1, "")]
    scale, p = next(((s, q) for s, q in prefixes if abs(x) >= s), prefixes[-1])
    v = x / scale
    digits = 0 if abs(v) >= 100 else 1 if abs(v) >= 10 else 2
    sep = " " if unit else ""
    return f"{v:.{digits}f}{sep}{p}{unit}"


def fmt_si(s: Summary, unit: str = "") -> str:
    if s.n == 0:
        return ""
    if s.n == 1 or not math.isfinite(s.std):
        return si(s.mean, unit)
    return f"{si(s.mean, unit)} ± {si(s.std, unit) if s.std else '0'}"


def _status_summary(g: pd.DataFrame) -> str:
    n = len(g)
    ok = int((g.status == "ok").sum())
    parts = [f"{ok}/{n} ok"]
    for st, k in g.status[g.status != "ok"].value_counts(sort=False).items():
        parts.append(f"{k} {st}")
    return "; ".join(parts)


def _notes(g: pd.DataFrame) -> str:
    """``seed 1: failed (RuntimeError: boom)`` for every cell that did not finish normally; a method
    whose cells are all duplicates of another method's says ``same run as X`` once."""
    if len(g) and (g.status == "duplicate").all():
        return _duplicate(g)
    return "; ".join(
        f"seed {s}: {st}" + (f" ({' '.join(str(r).split())})" if r else "")
        for s, st, r in zip(g.seed, g.status, g.reason, strict=True)
        if st != "ok"
    )


def _no_value(g: pd.DataFrame) -> str:
    """What a value cell says when no seed of the method finished normally."""
    bad = g[g.status != "ok"]
    if bad.empty:
        return "—"
    if (bad.status == "duplicate").all() and len(bad) == len(g):
        return _duplicate(g)
    pairs = list(dict.fromkeys(zip(bad.status, bad.reason, strict=True)))
    if len(pairs) == 1:
        st, r = pairs[0]
        return f"{st}: {_short(r)}" if r else st
    sts = list(dict.fromkeys(bad.status))
    return "/".join(sts) + " (see notes)"


def _duplicate(g: pd.DataFrame) -> str:
    """``same run as X``: what a duplicate method's cells say (their reason)."""
    return next((r for r in g.reason if r), "same run as another method")


def _groups(res: Results):
    c = res.cells
    for d in res.datasets:
        for a in res.alphas:
            for lab in res.labels:
                g = c[(c.dataset == d) & (c.alpha == a) & (c.label == lab)]
                if len(g):
                    yield d, a, lab, g


def when_final(res: Results) -> str:
    """What a final number is: the last evaluation, or the mean of the last N (``fl.final_window``)."""
    w = res.cells.get("final_window", pd.Series(dtype=float)).dropna()
    n = sorted({int(x) for x in w if x > 1})
    return (
        f"as the mean of its last {' / '.join(map(str, n))} evaluations (`fl.final_window`)"
        if n
        else "at the last round"
    )


def is_lm(g: pd.DataFrame) -> bool:
    """Cells of a language-modeling task: some recorded a perplexity, none an accuracy."""
    ppl, acc = (g.get(final(m), pd.Series(dtype=float)).astype(float) for m in (PERPLEXITY, ACCURACY))
    return bool(np.isfinite(ppl).any() and not np.isfinite(acc).any())


def _num(prefix: str, s: Summary, ci: bool = True) -> dict[str, float]:
    out = {f"{prefix}_mean": s.mean, f"{prefix}_std": s.std}
    if ci:
        out.update({f"{prefix}_ci95_lo": s.ci_lo, f"{prefix}_ci95_hi": s.ci_hi})
    return out


def _row_key(d: str, a: object, lab: str, g: pd.DataFrame, ok: pd.DataFrame) -> dict:
    """The columns every table row starts with: which cell group it is and how many seeds finished."""
    return {
        "dataset": d,
        "alpha": a,
        "label": lab,
        "method": _first(g, "method"),
        "params": _first(g, "params"),
        "seeds": len(g),
        "seeds_ok": len(ok),
    }


def _first(g: pd.DataFrame, col: str, default=""):
    return g[col].iloc[0] if col in g and len(g) else default


# -- accuracy -----------------------------------------------------------------------------------
def val_selected_accuracy(res: Results, config_hash: str) -> float:
    """Test accuracy at the evaluated round with the best validation accuracy (first on ties); NaN
    when the cell has no validation metrics. Never selects on the test split."""
    r = res.table(config_hash, "rounds")
    if r.empty or "val_accuracy" not in r or ACCURACY not in r:
        return math.nan
    r = r.dropna(subset=["val_accuracy", ACCURACY])
    if r.empty:
        return math.nan
    return float(r.accuracy.iloc[int(np.argmax(r.val_accuracy.to_numpy()))])


def accuracy_table(res: Results) -> Table:
    rows, disp = [], []
    personal_eval = sorted({p for p in res.cells.get("personal_eval", pd.Series(dtype=str)) if p})
    lm = {(d, a) for d, a, _, g in _groups(res) if is_lm(g)}  # their numbers are the LM table's
    for d, a, lab, g in _groups(res):
        if (d, a) in lm:
            continue
        ok = g[g.status == "ok"]
        acc, f1 = summarize(ok[final(ACCURACY)]), summarize(ok[final(MACRO_F1)])
        pers = summarize(ok[final(personal(ACCURACY))])
        val = [val_selected_accuracy(res, h) for h in ok.config_hash]
        vs = summarize(val)
        if vs.n:
            val_note = "" if vs.n == len(ok) else f"validation metrics in {vs.n}/{len(ok)} seeds"
        elif (g.val_fraction.fillna(0) > 0).any():
            val_note = "no validation metrics recorded"
        else:
            val_note = "no validation split"
        none = _no_value(g)
        rows.append(
            {
                **_row_key(d, a, lab, g, ok),
                **_num(final(ACCURACY), acc),
                **_num(final(MACRO_F1), f1),
                **_num("acc_at_val_round", vs),
                "acc_at_val_round_note": val_note,
                **_num(personal(ACCURACY), pers),
                "status": _status_summary(g),
                "notes": _notes(g),
            }
        )
        disp.append(
            {
                "dataset": d,
                "alpha": a,
                "method": lab,
                "params": _first(g, "params"),
                "seeds": _status_summary(g),
                "final acc. (%)": fmt_pct(acc) or none,
                "final macro-F1 (%)": fmt_pct(f1) or none,
                "acc. at val.-selected round (%)": (fmt_pct(vs) + (f" ({val_note})" if val_note else ""))
                if vs.n
                else (val_note if len(ok) else none),
                "personalized acc. (%)": fmt_pct(pers, ci=False) or ("not recorded" if len(ok) else none),
                "notes": _notes(g),
            }
        )
    legend = [
        f"accuracy and macro-F1 in % on the global test split {when_final(res)}; mean ± std over the seeds "
        "that finished normally, [95% Student-t interval of the mean]",
        "acc. at val.-selected round: test accuracy at the round with the best validation accuracy; the store "
        "has no validation metrics unless `data.val_fraction > 0` (the report never selects a round on the test split)",
        "personalized acc.: accuracy on the clients' own test splits (each drawn with that client's label mix), "
        "pooled over clients" + (f" ({'; '.join(personal_eval)})" if personal_eval else ""),
        "seeds: how many seeds finished normally; diverged, skipped, failed and missing cells are listed in notes "
        "with their reason",
    ]
    return _flags(Table("accuracy", "Accuracy", pd.DataFrame(rows), pd.DataFrame(disp), legend), res)


def _flags(t: Table, res: Results) -> Table:
    """Convergence flags, collapsed counts and tiers added to the accuracy table."""
    from fl_core.report.collapse import add_collapse
    from fl_core.report.convergence import annotate
    from fl_core.report.tiers import add_tiers

    annotate(t, res)
    add_collapse(t, res)
    add_tiers(t, res)
    return t


# -- cost ---------------------------------------------------------------------------------------
def _to_target(res: Results, config_hash: str, target: float) -> tuple[float, float, float] | None:
    """(rounds, client FLOPs, bytes up) spent until the first evaluated round with accuracy >= target."""
    r = res.table(config_hash, "rounds")
    if r.empty or ACCURACY not in r:
        return None
    hit = r[r.accuracy >= target - 1e-12]
    if hit.empty:
        return None
    rnd = int(hit["round"].iloc[0])
    c = res.table(config_hash, "costs")
    if c.empty:
        return float(rnd + 1), math.nan, math.nan
    upto = c[c["round"] <= rnd]
    return float(rnd + 1), float((upto.flops_fwd + upto.flops_bwd).sum()), float(upto.bytes_up.sum())


def reference_label(res: Results, reference: str = "full") -> str | None:
    if reference in res.labels:
        return reference
    names = res.cells[res.cells.method == reference].label
    return names.iloc[0] if len(names) else None


def targets(
    res: Results, fraction: float = 0.95, reference: str = "full"
) -> dict[tuple[str, str], tuple[float, str]]:
    """Per (dataset, alpha): (target accuracy or NaN, a sentence saying where it comes from)."""
    ref = reference_label(res, reference)
    out = {}
    for d in res.datasets:
        for a in res.alphas:
            if ref is None:
                out[d, a] = (math.nan, f"no target: reference method `{reference}` not in the grid")
                continue
            c = res.cells
            ok = c[(c.dataset == d) & (c.alpha == a) & (c.label == ref) & (c.status == "ok")]
            s = summarize(ok.final_accuracy)
            if len(ok) and is_lm(ok):
                out[d, a] = (math.nan, "no target: a language-modeling task (its perplexity: the LM table)")
            elif s.n == 0:
                out[d, a] = (math.nan, f"no target: `{ref}` has no finished seed here")
            else:
                t = fraction * s.mean
                out[d, a] = (
                    t,
                    f"target accuracy {100 * t:.1f}% = {100 * fraction:.0f}% of `{ref}`'s final mean "
                    f"accuracy ({100 * s.mean:.1f}%, {s.n} seed{'s' if s.n > 1 else ''})",
                )
    return out


def cost_table(res: Results, target_fraction: float = 0.95, reference: str = "full") -> Table:
    tg = targets(res, target_fraction, reference)
    has_mem = bool(np.isfinite(res.cells.peak_memory_bytes.astype(float)).any())
    rows, disp = [], []
    for d, a, lab, g in _groups(res):
        target, _ = tg[d, a]
        st = _cost_stats(res, g, target)
        rows.append(_cost_row(d, a, lab, g, st, has_mem))
        disp.append(_cost_display(d, a, lab, g, st, has_mem))
    return Table(
        "cost",
        "Cost to reach the target and totals",
        pd.DataFrame(rows),
        pd.DataFrame(disp),
        _cost_legend(target_fraction, reference, has_mem),
        {k: v[1] for k, v in tg.items()},
    )


@dataclass
class _CostStats:
    """One (dataset, alpha, method) group's costs over its finished seeds: to the target, and totals."""

    ok: pd.DataFrame
    target: float
    reached: list[tuple[float, float, float]]  # per seed that reached it: (rounds, FLOPs, bytes up)
    rounds: Summary
    flops_to: Summary
    bytes_to: Summary
    flops: Summary
    up: Summary
    down: Summary
    extra: Summary
    mem: Summary


def _cost_stats(res: Results, g: pd.DataFrame, target: float) -> _CostStats:
    ok = g[g.status == "ok"]
    hits = [] if not math.isfinite(target) else [_to_target(res, h, target) for h in ok.config_hash]
    reached = [h for h in hits if h is not None]
    rs, fs, bs = (summarize([h[i] for h in reached]) for i in range(3))
    return _CostStats(
        ok,
        target,
        reached,
        rs,
        fs,
        bs,
        summarize(ok.client_flops),
        summarize(ok.bytes_up),
        summarize(ok.bytes_down),
        summarize(ok.extra_pass_flops),
        summarize(ok.peak_memory_bytes),
    )


def _cost_row(d: str, a: str, lab: str, g: pd.DataFrame, st: _CostStats, has_mem: bool) -> dict:
    """The numbers (CSV) of one group."""
    row = {
        **_row_key(d, a, lab, g, st.ok),
        "target_accuracy": st.target,
        "seeds_reached_target": len(st.reached) if math.isfinite(st.target) else math.nan,
        **_num("rounds_to_target", st.rounds, ci=False),
        **_num("client_flops_to_target", st.flops_to, ci=False),
        **_num("bytes_up_to_target", st.bytes_to, ci=False),
        **_num("client_flops", st.flops, ci=False),
        **_num("bytes_up", st.up, ci=False),
        **_num("bytes_down", st.down, ci=False),
        **_num("extra_pass_flops", st.extra, ci=False),
    }
    if has_mem:
        row.update(_num("peak_memory_bytes", st.mem, ci=False))
    row.update({"status": _status_summary(g), "notes": _notes(g)})
    return row


def _reach_text(st: _CostStats, none: str) -> list[str]:
    """Rounds, FLOPs and bytes up to the target as shown, or why there are none."""
    if not len(st.ok):
        return [none] * 3
    if not math.isfinite(st.target):
        return ["no target"] * 3
    if not st.reached:
        return ["not reached"] * 3
    rs, n = st.rounds, len(st.reached)
    tail = "" if n == len(st.ok) else f" ({n}/{len(st.ok)} seeds; rest not reached)"
    rounds_txt = (f"{rs.mean:.1f} ± {rs.std:.1f}" if rs.n > 1 else f"{rs.mean:.0f}") + tail
    return [rounds_txt, fmt_si(st.flops_to, "FLOP"), fmt_si(st.bytes_to, "B")]


def _cost_display(d: str, a: str, lab: str, g: pd.DataFrame, st: _CostStats, has_mem: bool) -> dict:
    """The shown row (Markdown, LaTeX) of one group."""
    none = _no_value(g)
    reach = _reach_text(st, none)
    drow = {
        "dataset": d,
        "alpha": a,
        "method": lab,
        "params": _first(g, "params"),
        "seeds": _status_summary(g),
        "rounds to target": reach[0],
        "client FLOPs to target": reach[1],
        "bytes up to target": reach[2],
        "client FLOPs (total)": fmt_si(st.flops, "FLOP") or none,
        "bytes up (total)": fmt_si(st.up, "B") or none,
        "bytes down (total)": fmt_si(st.down, "B") or none,
        "extra-pass FLOPs": fmt_si(st.extra, "FLOP") or none,
    }
    if has_mem:
        drow["peak client memory"] = fmt_si(st.mem, "B") or ("not recorded" if len(st.ok) else none)
    drow["notes"] = _notes(g)
    return drow


def _cost_legend(target_fraction: float, reference: str, has_mem: bool) -> list[str]:
    return [
        f"to target: until the first evaluated round whose global test accuracy reaches the target "
        f"({100 * target_fraction:.0f}% of `{reference}`'s final mean accuracy in that dataset × alpha); mean ± std "
        f"over the seeds that reached it (how many, when not all: in the rounds column); rounds are counted from 1; FLOPs and bytes include every client "
        f"pass of those rounds (setup and scoring passes too)",
        "totals: analytic client compute (forward + backward) and client ↔ server bytes over the whole run, "
        "mean ± std over seeds; extra-pass FLOPs: the part spent outside local training (scoring, setup)",
        "peak client memory: the largest analytic training-step peak of any client in the run (weights + grads + "
        "optimizer state + stored activations, `fl_core.budget_model.client_step_memory`)"
        if has_mem
        else "peak client memory: not recorded by any cell of this store",
    ]


# -- writers ------------------------------------------------------------------------------------
def _md_cell(x) -> str:
    return " ".join(str(x).split()).replace("|", "\\|")


def markdown(t: Table, heading: str = "###") -> str:
    """One pipe table per dataset × alpha, each under a heading."""
    out = []
    cols = [c for c in t.display.columns if c not in ("dataset", "alpha")]
    for (d, a), g in t.display.groupby(["dataset", "alpha"], sort=False):
        out.append(f"{heading} {t.title}: {d}, partition {partition_label(a)}\n")
        if (d, a) in t.group_notes:
            out.append(t.group_notes[d, a] + "\n")
        out.append("| " + " | ".join(cols) + " |")
        out.append("|" + "---|" * len(cols))
        for _, r in g.iterrows():
            out.append("| " + " | ".join(_md_cell(r[c]) for c in cols) + " |")
        out.append("")
    return "\n".join(out)


_TEX = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "±": r"$\pm$",
    "…": r"\dots{}",
    "—": "---",
    "–": "--",
    "→": r"$\to$",
    "↔": r"$\leftrightarrow$",
    "×": r"$\times$",
    "α": r"$\alpha$",
    "≥": r"$\geq$",
    "`": "",
}


def tex_escape(s) -> str:
    return "".join(_TEX.get(ch, ch) for ch in " ".join(str(s).split()))


def latex(t: Table) -> str:
    """One booktabs ``table`` per dataset × alpha (needs ``\\usepackage{booktabs}``)."""
    out = [f"% {t.title}: generated by `layerbench report`; needs \\usepackage{{booktabs}}"]
    cols = [c for c in t.display.columns if c not in ("dataset", "alpha", "notes")]
    for (d, a), g in t.display.groupby(["dataset", "alpha"], sort=False):
        cap = f"{t.title}: {tex_escape(d)}, partition {tex_escape(partition_label(a))}."
        if (d, a) in t.group_notes:
            cap += " " + tex_escape(t.group_notes[d, a]) + "."
        notes = [
            f"{tex_escape(r['method'])}: {tex_escape(r['notes'])}" for _, r in g.iterrows() if r["notes"]
        ]
        if notes:
            cap += " Not finished normally: " + "; ".join(notes) + "."
        out += [
            "\\begin{table}[t]",
            "\\centering\\small",
            f"\\caption{{{cap}}}",
            f"\\label{{tab:{t.name}-{re.sub(r'[^A-Za-z0-9.]+', '-', f'{d}-{a}')}}}",
            "\\begin{tabular}{" + "l" * len(cols) + "}",
            "\\toprule",
            " & ".join(tex_escape(c) for c in cols) + r" \\",
            "\\midrule",
        ]
        out += [" & ".join(tex_escape(r[c]) for c in cols) + r" \\" for _, r in g.iterrows()]
        out += ["\\bottomrule", "\\end{tabular}", "\\end{table}", ""]
    return "\n".join(out)


def write_table(t: Table, out_dir: Path) -> dict[str, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {ext: out_dir / f"{t.name}.{ext}" for ext in ("csv", "md", "tex")}
    t.data.to_csv(paths["csv"], index=False, float_format=FLOAT_FORMAT, lineterminator="\n")
    legend = "\n".join(f"- {x}" for x in t.legend)
    paths["md"].write_text(f"## {t.title}\n\n{legend}\n\n{markdown(t)}")
    paths["tex"].write_text(latex(t))
    return paths
