"""The report's "learning rates" section: per (dataset, partition, method) the lr ``layerbench tune``
chose on validation rows, the tie rule and the tied lrs, every lr's mean ± SE over the tuning seeds,
the validation curves it came from, and tuning's share of the grid's compute (issue 26: <= 30 %).

Reads only the committed tuning record (``configs/tuned/<grid>.yaml`` and its ``_trials.csv``): the
per-partition record (``chosen: {dataset: {partition: {label: lr}}}``, several seeds, ``ties``) or the
older one (``chosen: {dataset: {label: lr}}``, one alpha and one seed, that lr for every partition).
Its figures (:func:`draw_tuning`, the ``tuning`` panel of :mod:`.gallery`) go into ``<report>/tuning/``
(its own folder: the report rebuilds ``tables/`` and ``figures/``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import yaml  # noqa: E402

from fl_core.report.style import RC, save  # noqa: E402


def _curve(row: pd.Series) -> tuple[list[int], list[float]]:
    if not isinstance(row.rounds, str) or not row.rounds:
        return [], []
    return [int(r) for r in row.rounds.split(";")], [100 * float(a) for a in row.val_accuracy.split(";")]


def draw_curves(
    trials: pd.DataFrame, chosen: dict[str, float], title: str, stem: str, out: Path
) -> list[Path]:
    """One small panel per method: validation accuracy per round for every lr and seed; the chosen
    lr bold red, pruned trials dotted."""
    methods = list(dict.fromkeys(trials.method))
    cols = min(6, len(methods))
    rows = math.ceil(len(methods) / cols)
    lrs = sorted(trials.lr.dropna().unique())
    with plt.rc_context(RC):
        fig, axes = plt.subplots(
            rows, cols, figsize=(2.1 * cols, 1.7 * rows + 0.5), sharey=True, squeeze=False
        )
        for ax, m in zip(axes.flat, methods, strict=False):
            for _, r in trials[trials.method == m].sort_values("lr").iterrows():
                x, y = _curve(r)
                best = r.lr == chosen.get(m)
                shade = str(0.15 + 0.6 * lrs.index(r.lr) / max(1, len(lrs) - 1))
                style = "-" if r.state == "complete" else ":"
                ax.plot(x, y, color="#c0392b" if best else shade, lw=2.2 if best else 0.9, ls=style)
            ax.set_title(m)
            ax.grid(alpha=0.3)
        for ax in list(axes.flat)[len(methods) :]:
            ax.axis("off")
        fig.supxlabel("round")
        fig.supylabel("validation accuracy (%)")
        fig.suptitle(f"{title}: tuning curves per lr and seed (bold red: chosen; dotted: pruned)")
        fig.tight_layout()
        paths = save(fig, out / stem)
        plt.close(fig)
    return paths


def record_groups(doc: dict, trials: pd.DataFrame) -> list[tuple[str, str | None, str, float, pd.DataFrame]]:
    """(dataset, partition or None for an old record, method, chosen lr, its trials) per choice."""
    from fl_core.config import per_partition

    out = []
    for d, entry in doc["chosen"].items():
        at_d = trials[trials.dataset == d]
        if not per_partition(entry):
            out += [(d, None, m, float(lr), at_d[at_d.method == m]) for m, lr in entry.items()]
            continue
        for part, per in entry.items():
            at = at_d[at_d.alpha.astype(str) == part]
            out += [(d, part, m, float(lr), at[at.method == m]) for m, lr in per.items()]
    return out


def _seeds(doc: dict) -> tuple[int, ...]:
    return tuple(doc["seeds"]) if "seeds" in doc else (int(doc["seed"]),)


def unfinished_edges(doc: dict, trials: pd.DataFrame) -> list[str]:
    """A bullet per choice whose winner or chosen lr sits on an edge of the lrs tried while the tuner's
    own rule (``fl_core.tune_choice.extension``, ``max_extend`` steps past an edge) still has a step."""
    from fl_core.tune_choice import aggregate, as_trials, extension

    out = []
    for d, part, m, lr, t in record_groups(doc, trials):
        stats = aggregate(as_trials(t.to_dict("records")), _seeds(doc))
        base = ((doc.get("start_lrs") or {}).get(d) or {}).get(part, {}).get(m) or doc["lrs"]
        nxt = extension(stats, base, doc.get("max_extend", 0))
        if nxt is not None:
            name = f"{d}/{part}/{m}" if part else f"{d}/{m}"
            out.append(
                f"- **{name}: tuning unfinished.** The chosen lr {lr:g} or the best one is on the edge of the "
                f"lrs tried, and the next step past it ({nxt:g}) was never tried: the record predates the "
                "rule or its run stopped. `make tune` tries it; the cells rerun if the choice changes."
            )
        elif edge := _on_edge(stats):
            name = f"{d}/{part}/{m}" if part else f"{d}/{m}"
            out.append(
                f"- **{name}: chosen on the edge.** Its best or chosen lr is the {edge} lr tried, and the "
                f"tuner's steps past its starting lrs (max_extend {doc.get('max_extend', 0)}) are spent: a "
                "better lr may lie further out, so this method may be under-tuned."
            )
    return [*out, ""] if out else []


def _on_edge(stats) -> str:
    """'largest' / 'smallest' where the winner or the choice is an end of the lrs tried (>= 2), else ''."""
    from fl_core.tune_choice import choose

    tried = [s.lr for s in stats]
    c = choose(stats)
    if c.lr is None or len(tried) < 2:
        return ""
    ends = {c.winner, c.lr}
    return "largest" if tried[-1] in ends else "smallest" if tried[0] in ends else ""


def _how(path: Path, doc: dict) -> str:
    """What the record says about how it was tuned (old records: one alpha, one seed)."""
    from fl_core.tune_choice import TIE_RULE

    if "seeds" not in doc:
        where = (
            f"alpha {doc['alpha']}, seed {doc['seed']} (one lr per dataset and method, for every partition)"
        )
    else:
        where = f"every partition listed, seeds {', '.join(map(str, doc['seeds']))}"
    lrs = (
        "3 around each method's earlier choice"
        if doc.get("centered")
        else ", ".join(f"{x:g}" for x in doc["lrs"])
    )
    text = f"From `{path.as_posix()}` (`layerbench tune`, {where}, lrs {lrs}; objective: {doc['objective']})."
    rule = doc.get("tie_rule") or (
        "one seed, so no standard error: the best lr (equal: the smaller)" if "seeds" not in doc else TIE_RULE
    )
    return f"{text} Test rows are never read. **Tie rule:** {rule}."


def _table(doc: dict, trials: pd.DataFrame) -> list[str]:
    from fl_core.tune_choice import aggregate, as_trials, format_stats

    seeds = _seeds(doc)
    lines = [
        "| dataset | partition | method | chosen lr | tied lrs | val. accuracy per lr (%, mean ± SE over seeds) |",
        "|---|---|---|---|---|---|",
    ]
    for d, part, m, lr, t in record_groups(doc, trials):
        stats = aggregate(as_trials(t.to_dict("records")), seeds)
        tied = ((doc.get("ties") or {}).get(d) or {}).get(part, {}).get(m) if part else None
        ties = ", ".join(f"{x:g}" for x in tied) if tied else "-"
        lines.append(f"| {d} | {part or 'all'} | {m} | {lr:g} | {ties} | {format_stats(stats, len(seeds))} |")
    n_tied = sum(len(per) for parts in (doc.get("ties") or {}).values() for per in parts.values())
    if "seeds" not in doc:  # one seed: no standard error, no ties
        return [*lines, ""]
    return [*lines, "", f"- {n_tied} of {len(record_groups(doc, trials))} choices have tied lrs.", ""]


def _panels(doc: dict, trials: pd.DataFrame) -> list[tuple[str, str, pd.DataFrame, dict[str, float]]]:
    """(file stem, title, trials, chosen lr per method) of each figure: one per dataset (and partition)."""
    chosen: dict[tuple[str, str | None], dict[str, float]] = {}
    for d, part, m, lr, _ in record_groups(doc, trials):
        chosen.setdefault((d, part), {})[m] = lr
    out = []
    for (d, part), per in chosen.items():
        t = trials[trials.dataset == d]
        if part is not None:
            t = t[t.alpha.astype(str) == part]
        stem = f"tuning_{d}" + (f"_{part.replace(':', '-')}" if part else "")
        out.append((stem, f"{d}, {part}" if part else d, t, per))
    return out


def read_record(tuned: str | Path | None) -> tuple[dict, pd.DataFrame] | None:
    """The tuning record and its trials (``<record>_trials.csv``); None without both files."""
    if not tuned:
        return None
    path = Path(tuned)
    csv = path.with_name(path.stem + "_trials.csv")
    if not (path.is_file() and csv.is_file()):
        return None
    trials = pd.read_csv(csv, keep_default_na=False, na_values=[""], dtype={"alpha": str})
    return yaml.safe_load(path.read_text()), trials


def draw_tuning(tuned: str | Path | None, out: Path) -> list[Path]:
    """The curves of every figure of the record into ``out/tuning/`` (the ``tuning`` panel of
    :mod:`.gallery`); [] without a record."""
    rec = read_record(tuned)
    if rec is None:
        return []
    return [
        p
        for stem, title, t, chosen in _panels(*rec)
        for p in draw_curves(t, chosen, title, stem, out / "tuning")
    ]


def seed_overlap(doc: dict, grid_seeds: Sequence[int]) -> str:
    """Whether the published cells are runs the lrs were chosen on: a tuning trial at a grid seed and
    the chosen lr is that cell's very run, so its validation luck chose the lr (optimistic there)."""
    tuned = _seeds(doc)
    both = sorted(set(tuned) & set(grid_seeds))
    seeds = f"Tuning seeds {', '.join(map(str, tuned))}; grid seeds {', '.join(map(str, grid_seeds))}"
    if not both:
        return f"- {seeds}: disjoint, so no published cell is a run whose validation accuracy chose its lr."
    return (
        f"- {seeds}: at seed {', '.join(map(str, both))}, a cell of a tuned partition is the same training run "
        "as its chosen lr's tuning trial, so it carries the choice's optimism (its validation luck helped pick "
        "the lr); disjoint `tune_seeds` avoid this."
    )


def tuning_section(tuned: str | Path | None, grid_wall_s: float, grid_seeds: Sequence[int] = ()) -> list[str]:
    """README lines for the grid's tuning record, or why there is none; the figures they show are
    drawn by :func:`draw_tuning`. ``grid_seeds``: the grid's seeds, to say whether they overlap the
    tuning seeds."""
    lines = ["## Learning rates (tuned on the validation split)", ""]
    if not tuned:
        return lines + ["No `tuned:` file in the grid: every method uses `fl.lr` (or its own `lr`).", ""]
    if (rec := read_record(tuned)) is None:
        return lines + [
            f"The tuning record `{Path(tuned).as_posix()}` is missing: run `make tune` first.",
            "",
        ]
    doc, trials = rec
    tune_s = float(trials.wall_s.fillna(0).sum()) if "wall_s" in trials else float("nan")
    share = f"{100 * tune_s / grid_wall_s:.0f} %" if grid_wall_s > 0 and tune_s == tune_s else "n/a"
    lines += [
        _how(Path(tuned), doc),
        "",
        f"- tuning compute: {tune_s / 3600:.2f} h of trial cells = {share} of this grid's "
        f"{grid_wall_s / 3600:.2f} h of cell wall time",
        *([seed_overlap(doc, grid_seeds)] if grid_seeds else []),
        "",
        *_table(doc, trials),
        *unfinished_edges(doc, trials),
        *[line for stem, *_ in _panels(doc, trials) for line in (f"![{stem}](tuning/{stem}.png)", "")],
    ]
    return lines + [f"- {note}" for note in doc.get("notes") or []]
