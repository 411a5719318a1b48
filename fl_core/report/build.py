"""``build_report``: every table, figure and claim of a grid, rebuilt from the local store alone.

Where it goes: :func:`fl_core.report.publish.report_dir`. ``tables/`` and ``figures/`` there are
regenerated from scratch on every build (no stale panel survives), and the same store gives
byte-identical files.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
from collections import Counter
from pathlib import Path

import pandas as pd
import yaml

from fl_core.claims_file import DEFAULT_CLAIMS, default_claims_path  # noqa: F401  (re-exported)
from fl_core.compact import COMPACT, write_compact
from fl_core.config import ConfigError, GridConfig
from fl_core.provenance import code_revision, git_ignored
from fl_core.report import cd
from fl_core.report.claims import write_claims
from fl_core.report.gallery import PANELS, Inputs, all_figures
from fl_core.report.lm_table import lm_table
from fl_core.report.load import Results, load_results
from fl_core.report.publish import choose_source, report_dir
from fl_core.report.tables import Table, accuracy_table, cost_table, is_lm, markdown, write_table
from fl_core.report.tuning import tuning_section

log = logging.getLogger(__name__)
REPO = Path(__file__).resolve().parents[2]


def _rel(p: Path, base: Path) -> str:
    try:
        return p.relative_to(base).as_posix()
    except ValueError:
        return p.as_posix()


def _provenance(res: Results) -> list[str]:
    """Git revisions and package versions the runs recorded (from result.json)."""
    done = res.cells[res.cells.status.isin(["ok", "diverged", "skipped", "failed"])]
    revs = done.git_revision.fillna("").replace("", "unknown").value_counts(sort=False) if len(done) else {}
    lines = []
    if len(revs):
        lines.append(
            "- git revision of the runs: " + ", ".join(f"`{r}` ({n} cells)" for r, n in sorted(revs.items()))
        )
    versions: dict[str, set[str]] = {}
    threads: Counter[int] = Counter()
    for h in done.config_hash:
        result = res.result(h)
        for k, v in (result.get("versions") or {}).items():
            versions.setdefault(k, set()).add(str(v))
        if result.get("torch_threads") is not None:
            threads[result["torch_threads"]] += 1
    if threads:
        lines.append(
            "- torch threads per cell: " + ", ".join(f"{t} ({n} cells)" for t, n in sorted(threads.items()))
        )
    if versions:
        lines.append(
            "- package versions of the runs: "
            + ", ".join(f"{k} {'/'.join(sorted(v))}" for k, v in sorted(versions.items()))
        )
    return lines


def write_report(
    res: Results,
    out: Path,
    *,
    title: str,
    header: list[str],
    claims_path: Path | None = None,
    target_fraction: float = 0.95,
    reference: str = "full",
    footer: list[str] | None = None,
    tuned: str | Path | None = None,
) -> tuple[Path, dict]:
    """Tables, figures, claims and README under ``out`` for already loaded results (``tuned``: the
    grid's tuning record, whose curves are drawn too).

    Returns (README path, {"tables": {name: Table}, "figures": {panel: [paths]}, "claims": summary or None}).
    """
    out.mkdir(parents=True, exist_ok=True)
    for sub in ("tables", "figures"):
        shutil.rmtree(out / sub, ignore_errors=True)
    tables: dict[str, Table] = {} if is_lm(res.cells) else {"accuracy": accuracy_table(res)}  # LM only: none
    tables["cost"] = cost_table(res, target_fraction, reference)
    if (lm := lm_table(res)) is not None:  # language-modeling cells: perplexity, lower is better
        tables["lm"] = lm
    for t in tables.values():
        write_table(t, out / "tables")
    fig_errors: dict[str, str] = {}
    inputs = Inputs(res, out, tuned)
    figures = all_figures(inputs, fig_errors)
    claims_md, claims_summary, claims_error = None, None, None
    if claims_path is not None:
        try:
            claims_md, claims_summary = write_claims(res, claims_path, out)
        except ConfigError as err:  # the tables and figures still come; the README says what to fix
            log.error("%s", err)
            claims_error = str(err)
    lines = [
        *_readme_head(res, title, header),
        *_tables_section(tables),
        *_figures_section(inputs, figures, fig_errors),
        "## Ranking across cells (Friedman, critical difference)",
        "",
        *cd.section(cd.ranking(inputs), figures["cd"], fig_errors.get("cd")),
        "",
        *_claims_section(claims_path, claims_md, claims_summary, claims_error),
        *(footer or []),
    ]
    readme = out / "README.md"
    readme.write_text("\n".join(lines).rstrip() + "\n")
    return readme, {"tables": tables, "figures": figures, "claims": claims_summary}


def _readme_head(res: Results, title: str, header: list[str]) -> list[str]:
    """Title, the caller's header, cell counts, provenance, and a warning for a random-weights model."""
    counts = res.cells.status.value_counts(sort=False)
    lines = [
        f"# {title}",
        "",
        *header,
        f"- cells: {len(res.cells)} ({', '.join(f'{k} {v}' for k, v in sorted(counts.items()))})",
        *_provenance(res),
        "",
    ]
    missing = int(counts.get("missing", 0))
    if missing:
        lines += [
            f"**Grid in progress: {len(res.cells) - missing} of {len(res.cells)} cells finished.** The missing "
            "ones are named in the tables' notes; every number here can still move until they have run "
            "(a sweep resumes the rest).",
            "",
        ]
    if (
        res.cells.get("model_is_random") is not None
        and res.cells.model_is_random.fillna(False).astype(bool).any()
    ):
        lines += [
            "**The model has RANDOM weights (a test model): these numbers say nothing about the methods.**",
            "",
        ]
    return lines


def _tables_section(tables: dict[str, Table]) -> list[str]:
    lines = [
        "## Tables",
        "",
        "Also as CSV (numbers) and LaTeX (booktabs): "
        + ", ".join(f"[`{n}.csv`](tables/{n}.csv) / [`{n}.tex`](tables/{n}.tex)" for n in tables)
        + ".",
        "",
    ]
    for t in tables.values():
        lines += [f"### {t.title}", "", *[f"- {x}" for x in t.legend], "", markdown(t, heading="####")]
    return lines


def _figures_section(inputs: Inputs, figures: dict, fig_errors: dict[str, str]) -> list[str]:
    """One subsection per registered panel: its PNGs (with the PDF beside), or why there is none."""
    lines = [
        "## Figures",
        "",
        "Each figure is also a PDF next to the PNG. Methods keep one color, line style "
        "and marker in every figure. All thumbnails: [figures/index.png](figures/index.png).",
        "",
    ]
    for name, paths in figures.items():
        pngs = [p for p in paths if p.suffix == ".png"]
        if name in fig_errors:
            body = [f"**Could not draw this panel**: `{fig_errors[name]}` (see the log).", ""]
        elif pngs and (sec := PANELS[name].section):  # shown there; a link here, not a second copy
            anchor = "#" + "".join(c for c in sec.lower() if c.isalnum() or c in " -").replace(" ", "-")
            body = [f"In [{sec}]({anchor}) below.", ""]
        elif pngs:
            body = []
            for p in pngs:  # the PDF is beside the PNG
                png, pdf = _rel(p, inputs.root), _rel(p.with_suffix(".pdf"), inputs.root)
                body += [f"![{p.stem}]({png}) ([PDF]({pdf}))", ""]
        elif (why := PANELS[name].if_empty(inputs)) is not None:
            body = [why, ""]
        else:
            continue  # nothing drawn, and the panel's own section says why
        lines += [f"### {PANELS[name].title}", "", *body]
    return lines


def _claims_section(
    claims_path: Path | None, claims_md: Path | None, summary: pd.DataFrame | None, error: str | None
) -> list[str]:
    lines = ["## Paper claims", ""]
    if error is not None:
        return lines + [f"**The claims file could not be used**: {error}", ""]
    if summary is None:
        return lines + ["No claims file (`configs/claims.yaml`): nothing tested.", ""]
    lines += [
        f"Details, statistics and the test procedure: [{claims_md.name}]({claims_md.name}) "
        f"(from `{claims_path.name}`).",
        "",
        "| claim | a | b | comparisons (Holm within the claim) | verdict |",
        "|---|---|---|---|---|",
    ]
    lines += [f"| {r.claim} | {r.a} | {r.b} | {r.tally} | {r.verdict} |" for _, r in summary.iterrows()]
    lines.append("")
    return lines


def build_report(
    grid: GridConfig,
    config_path: str | Path,
    *,
    claims_path: str | Path | None = None,
    out_dir: str | Path | None = None,
    wandb: bool = True,
    target_fraction: float = 0.95,
    reference: str = "full",
    force: bool = False,
) -> Path:
    """Rebuild every table, figure and claim of ``grid`` from its local store; returns the README path.

    The store is the raw runs, or the compact copy beside a published report where the raw runs hold
    fewer cells (:mod:`fl_core.report.publish`: a published report is never replaced by one with fewer
    cells unless ``force``); after a build from raw runs the compact copy is rewritten.

    Also rewrites ``<output_dir>/summary_<grid>.{md,csv}`` (the quick table) and, unless ``wandb`` is
    False or the grid's W&B mode is ``off``, logs the report to one W&B run in the sweep's group
    (best-effort)."""
    from fl_core.report.summary import write_summary

    out = Path(out_dir) if out_dir is not None else report_dir(grid)
    src = choose_source(grid, out, force)
    if src.up_to_date:
        log.info(
            "%s is already built from its compact copy %s (%d cells); --force rebuilds it",
            out / "README.md",
            out / COMPACT,
            src.cells,
        )
        return out / "README.md"
    res = load_results(src.root, grid=grid)
    store_desc = (
        f"the compact copy `{(out / COMPACT).as_posix()}` of the results store"
        if src.from_compact
        else f"the local results store `{Path(grid.output_dir).as_posix()}/runs/`"
    )
    claims = Path(claims_path) if claims_path is not None else default_claims_path(config_path)
    wall = float(res.cells["wall_s"].fillna(0).sum()) if "wall_s" in res.cells else 0.0
    readme, parts = write_report(
        res,
        out,
        title=f"Results: grid `{grid.name}`",
        header=_grid_header(grid, Path(config_path), store_desc),
        claims_path=claims,
        target_fraction=target_fraction,
        reference=reference,
        footer=[*tuning_section(grid.tuned, wall, grid.seeds), *_other_reports(out), *_config_footer(grid)],
        tuned=grid.tuned,
    )
    write_summary(grid, config_path, res=res)
    if not src.from_compact and src.cells:
        write_compact(src.root, [c.hash() for c in grid.cells()], out / COMPACT)
    if wandb:
        _log_to_wandb(grid, out, len(res.cells), parts)
    return readme


def _grid_header(grid: GridConfig, cfg_path: Path, store_desc: str) -> list[str]:
    """How the report was made: command, store, config (sha256), model and FL settings, grid, git."""
    from fl_core.model_names import model_label

    sha = hashlib.sha256(cfg_path.read_bytes()).hexdigest()[:12] if cfg_path.is_file() else "n/a"
    fl = grid.fl
    return [
        f"Made by `layerbench report {cfg_path.as_posix()}` (`make report`) from {store_desc} "
        "alone (no W&B); the same command rebuilds every file here, and the same store gives byte-identical tables.",
        "",
        f"- config: `{cfg_path.as_posix()}` (sha256 `{sha}…`)"
        + (f": {grid.description}" if grid.description else ""),
        f"- model: {model_label(grid.model)}; {fl.rounds} rounds, {fl.num_clients} clients, {fl.clients_per_round} per "
        f"round, {fl.local_steps or 'all'} local steps × batch {fl.batch_size}, "
        + (f"lr {fl.lr}" if not grid.tuned else "lr tuned per dataset and method (Learning rates below)")
        + f", max_len {fl.max_len}, "
        f"evaluated every {fl.eval_every} rounds"
        + (
            f"; every final number (accuracy, macro-F1, loss, personalized) is the mean of the last "
            f"{fl.final_window} evaluations (`fl.final_window`), which smooths the swing of a model averaged "
            "over a few sampled clients"
            if fl.final_window > 1
            else ""
        ),
        f"- grid: datasets {', '.join(grid.datasets)}; alphas {', '.join(map(str, grid.alphas))}; seeds "
        f"{', '.join(map(str, grid.seeds))}; methods {', '.join(m.display for m in grid.methods)}",
        f"- git revision of the report code (`fl_core/report/`, `fl_core/compact.py`): `{code_revision()}`",
    ]


def _other_reports(out: Path) -> list[str]:
    """Links to the reports published in sub-folders of ``out`` (in ``results/``: the default grid's
    quick look, the speed measurements), each by its title; never to a folder git ignores (a smoke run)."""
    subs = sorted(p for p in out.iterdir() if (p / "README.md").is_file()) if out.is_dir() else []
    subs = [p for p in subs if not git_ignored(p)]
    if not subs:
        return []
    lines = ["## Other published results", ""]
    for p in subs:
        title = (p / "README.md").read_text().splitlines()[0].lstrip("# ").strip()
        lines.append(f"- [`{p.name}/`]({p.name}/README.md): {title}")
    return [*lines, ""]


def _config_footer(grid: GridConfig) -> list[str]:
    """The validated grid as YAML, folded."""
    dump = yaml.safe_dump(grid.model_dump(mode="json"), sort_keys=False, width=110)
    return [
        "## Config",
        "",
        "<details><summary>the grid, as validated</summary>",
        "",
        "```yaml",
        dump.rstrip(),
        "```",
        "",
        "</details>",
        "",
    ]


def _log_to_wandb(grid: GridConfig, out: Path, cells: int, parts: dict) -> None:
    """The report's tables, claims and figures to one W&B run in the sweep's group (best-effort)."""
    from fl_core.report.wandb_log import log_report

    tables: dict[str, pd.DataFrame] = {n: t.data for n, t in parts["tables"].items()}
    if parts["claims"] is not None:
        tables["claims"] = parts["claims"]
    figs = [p for ps in parts["figures"].values() for p in ps]
    log_report(grid.wandb, grid.name, grid.output_dir, tables, figs, {"report_dir": str(out), "cells": cells})
