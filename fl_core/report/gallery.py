"""The report's figures, registered in report order (:func:`.figure_registry.panel`), and their drawing;
import :data:`PANELS` from here (importing this module registers them).

Files (PNG and PDF, through :func:`.style.save`) in ``<report>/figures/`` unless said:

- ``acc_vs_round_<dataset>`` (:mod:`.fig_curves`): accuracy vs round, rows = alpha, columns = method
  family, ``full`` as a grey reference line in every panel, round 0 = pretrained where evaluated;
- ``pareto_bytes_up_<dataset>`` / ``pareto_flops_<dataset>`` (:mod:`.fig_pareto`): final accuracy vs
  bytes uploaded / client FLOPs with the Pareto front, one scale for the whole row;
- ``blocks_<dataset>_a<alpha>`` (:mod:`.fig_updates`): what was updated, per method: the share of
  clients that trained each block per round, the server's applied blocks, FibecFed's GAL/PL split and
  data share; ``depth_<dataset>``: the suffix depth per device class of budget methods;
- ``partition_<dataset>_a<alpha>`` (:mod:`.figures`): the client × label counts of the Dirichlet
  partition, per seed;
- ``budget_<dataset>`` (:mod:`.figures`): final accuracy vs budget for the budget family;
- ``cd_<metric>`` (:mod:`.cd`): the critical-difference diagram of the Friedman ranking (by final
  accuracy, or perplexity on a language-modeling grid);
- ``tuning/tuning_<dataset>[_<partition>]`` (:mod:`.tuning`): the lr tuning's validation curves;
- ``index.png``: a contact sheet of every PNG above, for reviewers.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import matplotlib
import matplotlib.image as mpimg
from matplotlib.figure import Figure

from fl_core.report import cd, tuning
from fl_core.report import figures as F
from fl_core.report.figure_registry import NOTHING, PANELS, Inputs, panel
from fl_core.report.style import PNG_METADATA, RC

__all__ = ["PANELS", "Inputs", "all_figures", "contact_sheet", "panel"]

log = logging.getLogger(__name__)


def _own_section(_: Inputs) -> None:
    return None  # not listed when empty: the report's own section for it says why


def _budget_empty(i: Inputs) -> str:
    if F.budget_rows(i.res).empty:
        return "Skipped: the grid has no budget-aware methods (`tiny` / `lora_budget` with a `budget` param)."
    return NOTHING


@panel("acc_vs_round", "Accuracy vs round (mean ± std band over seeds)", "acc_vs_round_<dataset>")
def _acc_vs_round(i: Inputs) -> list[Path]:
    return F.acc_vs_round(i.res, i.styles, i.figures)


@panel(
    "pareto_bytes_up",
    "Accuracy vs communication (bytes uploaded), with the Pareto front",
    "pareto_bytes_up_<dataset>",
)
def _pareto_bytes_up(i: Inputs) -> list[Path]:
    label = "bytes uploaded (client → server)"
    return F.pareto(i.res, i.styles, i.figures, "bytes_up", label, "pareto_bytes_up")


@panel("pareto_flops", "Accuracy vs client compute (FLOPs), with the Pareto front", "pareto_flops_<dataset>")
def _pareto_flops(i: Inputs) -> list[Path]:
    return F.pareto(i.res, i.styles, i.figures, "client_flops", "client FLOPs", "pareto_flops")


@panel(
    "blocks",
    "What was updated: blocks the clients trained and the server applied, per round and method",
    "blocks_<dataset>_a<alpha>",
)
def _blocks(i: Inputs) -> list[Path]:
    return F.blocks_heatmaps(i.res, i.figures)


@panel("depth", "Suffix depth per device class (budget methods)", "depth_<dataset>")
def _depth(i: Inputs) -> list[Path]:
    return F.depth(i.res, i.styles, i.figures)


@panel("partition", "The data partition: client × label counts", "partition_<dataset>_a<alpha>")
def _partition(i: Inputs) -> list[Path]:
    return F.partitions(i.res, i.figures)


@panel("budget", "Budget-aware scheme: suffix training vs LoRA", "budget_<dataset>", if_empty=_budget_empty)
def _budget(i: Inputs) -> list[Path]:
    return F.budget(i.res, i.styles, i.figures)


@panel(
    "cd",
    "Critical-difference diagram of the ranking across cells (Friedman test, Nemenyi post-hoc)",
    "cd_<metric>",
    report_rc=False,  # autorank's own layout
    if_empty=_own_section,
    section="Ranking across cells (Friedman, critical difference)",
)
def _cd(i: Inputs) -> list[Path]:
    r = cd.ranking(i)
    return [] if r.result is None else cd.cd_diagram(r.result, i.figures / f"cd_{cd.ranked_metric(i.res)}")


@panel(
    "tuning",
    "Learning-rate tuning: validation accuracy per round for every lr and seed",
    "tuning_<dataset>[_<partition>]",
    if_empty=_own_section,
    section="Learning rates (tuned on the validation split)",
)
def _tuning(i: Inputs) -> list[Path]:
    return tuning.draw_tuning(i.tuned, i.root)


def contact_sheet(pngs: list[Path], out: Path, ncol: int = 4) -> list[Path]:
    """``out/index.png``: every figure as a titled thumbnail, in report order."""
    if not pngs:
        return []
    nrow = math.ceil(len(pngs) / ncol)
    fig = Figure(figsize=(3.2 * ncol, 2.6 * nrow), layout="constrained")
    axes = fig.subplots(nrow, ncol, squeeze=False)
    for ax, p in zip(axes.flat, pngs, strict=False):
        ax.imshow(mpimg.imread(p), interpolation="antialiased")
        ax.set_title(p.stem, fontsize=7)
    for ax in axes.flat:
        ax.set_axis_off()
    out.mkdir(parents=True, exist_ok=True)
    png = out / "index.png"
    fig.savefig(png, dpi=110, metadata=PNG_METADATA)
    return [png]


def all_figures(inputs: Inputs, errors: dict[str, str] | None = None) -> dict[str, list[Path]]:
    """Every registered panel, in order; returns panel name → files written (PNG and PDF), then
    ``figures/index.png``, the contact sheet of their PNGs. A panel that fails to draw is logged
    and left out (its error goes into ``errors``), so one bad panel never costs the rest."""
    written: dict[str, list[Path]] = {}
    for p in PANELS.values():
        try:
            with matplotlib.rc_context(RC if p.report_rc else None):
                written[p.name] = p.draw(inputs)
        except Exception as err:  # noqa: BLE001 — reported in the README, the other panels still come
            log.exception("figure panel %s failed", p.name)
            written[p.name] = []
            if errors is not None:
                errors[p.name] = f"{type(err).__name__}: {err}"
    with matplotlib.rc_context(RC):
        pngs = [f for fs in written.values() for f in fs if f.suffix == ".png"]
        contact_sheet(pngs, inputs.figures)
    return written
