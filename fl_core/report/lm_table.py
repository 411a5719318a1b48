"""The language-modeling table: held-out perplexity (lower is better) and next-token accuracy per
dataset × alpha × method, ranked in each group by the task's primary metric in the direction that
:mod:`fl_core.metrics` declares. Built only when some cell recorded a perplexity."""

from __future__ import annotations

import numpy as np
import pandas as pd

from fl_core.metrics import PERPLEXITY, PRIMARY, SUMMARY, TOKEN_ACCURACY, final, personal
from fl_core.report.load import Results
from fl_core.report.stats import Summary, summarize
from fl_core.report.tables import (
    Table,
    _groups,
    _no_value,
    _notes,
    _num,
    _row_key,
    _status_summary,
    fmt_pct,
    when_final,
)
from fl_core.report.tiers import add_tiers


def _fmt(s: Summary) -> str:
    if not s.n:
        return ""
    ci = f" [{s.ci_lo:.2f}, {s.ci_hi:.2f}]" if s.n > 1 else ""
    return f"{s.mean:.2f} ± {s.std:.2f}{ci}" if s.n > 1 else f"{s.mean:.2f}"


def rank_within(data: pd.DataFrame, metric: str) -> pd.Series:
    """1 = best per (dataset, alpha) by ``<metric>_mean``, in the metric's declared direction."""
    asc = not SUMMARY[metric].higher
    return data.groupby(["dataset", "alpha"])[f"{metric}_mean"].rank(ascending=asc, method="min")


def lm_table(res: Results) -> Table | None:
    """Perplexity (global and on the clients' own test splits) and token accuracy; None without LM cells."""
    key = PRIMARY["lm"]
    c = res.cells
    if key not in c or not np.isfinite(c[key].astype(float)).any():
        return None
    rows, disp = [], []
    for d, a, lab, g in _groups(res):
        if not np.isfinite(g[key].astype(float)).any() and (g.status == "ok").any():
            continue  # a classification group
        ok = g[g.status == "ok"]
        ppl, tok = summarize(ok[key]), summarize(ok[final(TOKEN_ACCURACY)])
        pers = summarize(ok.get(final(personal(PERPLEXITY)), pd.Series(dtype=float)))
        rows.append(
            {
                **_row_key(d, a, lab, g, ok),
                **_num(key, ppl),
                **_num(final(TOKEN_ACCURACY), tok),
                **_num(final(personal(PERPLEXITY)), pers),
                "status": _status_summary(g),
                "notes": _notes(g),
            }
        )
        none = _no_value(g)
        disp.append(
            {
                "dataset": d,
                "alpha": a,
                "method": lab,
                "seeds": _status_summary(g),
                "final perplexity (lower is better)": _fmt(ppl) or none,
                "personalized perplexity": _fmt(pers) or none,
                "next-token acc. (%)": fmt_pct(tok) or none,
                "notes": _notes(g),
            }
        )
    data = pd.DataFrame(rows)
    data["rank"] = rank_within(data, key).astype(int)
    display = pd.DataFrame(disp)
    display.insert(3, "rank", data["rank"].to_numpy())
    legend = [
        "perplexity: exp of the mean next-token negative log-likelihood over every held-out (non-pad) "
        f"token, global test split {when_final(res)}; lower is better; mean ± std over seeds [95% t-interval]",
        "personalized perplexity: the same on the clients' own test splits (their topic mix), pooled",
        "rank: 1 = lowest mean perplexity in its dataset × alpha (ties share a rank)",
    ]
    table = Table("lm", "Language modeling", data, display, legend)
    add_tiers(table, res, key)  # tiers and MDE on perplexity, lower is better
    return table
