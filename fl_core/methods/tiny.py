"""Budget-aware layer training of tiny transformers (CAFF) and LoRA under the same budgets.

Pfeiffer, Aboelenien Ahmed, Khalili, Henkel, "Efficient Federated Finetuning of Tiny Transformers
with Resource-Constrained Devices", arXiv 2411.07826 (2024); spec: tiny.md (project specs).

``tiny``: every device c has budgets for peak memory and FLOPs per step and upload bytes per round
(:mod:`fl_core.budget_model`). It trains the largest suffix ``t_c`` of blocks (+ head) that fits all
of them, fixed for the run (``t_c = 0``: head only); a device that fits nothing sits out. The server
averages every parameter over the devices that trained it (per-block FedAvg, the default
aggregate), so deep blocks are averaged over everyone and shallow ones over strong devices only.
Before training, the architecture is chosen among ``candidates`` as the one with the largest mean
``t_c`` over devices (a device that sits out counts as −1; ties go to the larger model).

Resolutions of the spec (named):

- *Budgets*: fractions (``budget``: 0.125/0.25/0.5, or ``hetero``: each device draws one of
  ``levels``, seeded) of the full fine-tuning cost of ``reference`` (default: the largest
  candidate), so the absolute device budgets do not depend on which architecture is then chosen.
  Costs use the grid's ``fl.batch_size``, ``fl.max_len`` (the padded worst case),
  ``fl.optimizer``/``momentum``; ``constrain`` says which of memory/flops/upload apply.
- *Memory*: fits use each candidate configuration's **measured** peak (``memory_fit: measured``,
  default; :mod:`fl_core.profiling`, one real step under ``torch.profiler`` on the ``kernels``
  device, profiled once per (model, plan, batch, seq) and cached under the layerbench cache dir),
  budgets being fractions of the reference's measured full fine-tuning peak. The analytic sum is the
  cross-check (``t_analytic``, ``memory_bytes`` in the run info; ``memory_fit: analytic``, the
  ablation, lets it decide); ``memory_fit`` in the run info says which one decided. The analytic sum
  over-states deep suffixes (full: 1.13× measured on MiniLM-L6) and under-states head-only (0.93×),
  so the two can order configurations differently. FLOPs and upload stay analytic (exact counts).
- *Architecture*: the simulator builds the grid's ``model``; the choice is computed by the pure
  :func:`choose_architecture` in ``setup``, and if it differs from the cell's model the cell fails
  with :class:`ArchitectureMismatch`, naming the ``model:`` to set (a simulator hook could instead
  build the chosen model: :meth:`Tiny.select_model`).
- *Sitting out*: the plan trains nothing (``blocks=∅, head=False``, ``info["sit_out"]``); the
  simulator skips such a client (``run_round``: no forward pass, no training, no upload, no cost
  row; the round's selections record it with ``sit_out: true``) and the aggregate never sees it. If
  no device fits even head-only training, ``setup`` raises :class:`DoesNotFit` (the sweep records
  the cell as skipped) rather than reporting an untrained model.
- ``schedule: successive`` (optional; successive layer training, Pfeiffer et al. 2023): device c
  trains a window of ``w_c`` consecutive blocks (+ head) that moves from the input (round 0) to the
  output (last round); ``w_c`` is the largest window that fits at its costliest position (the
  bottom, where backward passes through every block above it). SLT's scaled-down training of the
  layers above the window is not implemented: they are frozen and only passed through.

- *Dropout*: the frozen prefix runs in eval mode, the trained suffix in train mode
  (:data:`fl_core.methods.base.DROPOUT_NOTE`, in every run's method info): a shallow suffix sees less
  dropout than full fine-tuning or LoRA (whose adapters sit in every block).

``lora_budget``: the ``lora`` method with the largest rank from ``ranks`` that fits every device's
budget (same budgets, same seeded draw for ``hetero``), or :class:`DoesNotFit` — never silently
over budget.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from fl_core.budget_model import (
    RESOURCES,
    Budget,
    DoesNotFit,
    MeasuredMemory,
    StepCost,
    arch_of,
    full_cost,
    largest_rank,
    largest_suffix,
    largest_window,
    step_cost,
)
from fl_core.methods.base import Method, TrainPlan, register
from fl_core.methods.lora import Lora, LoraParams
from fl_core.models.blocks import ArchInfo
from fl_core.params.tiny import CANDIDATES, LEVELS, BudgetParams, LoraBudgetParams, TinyParams  # noqa: F401
from fl_core.rng import seeded_rng

log = logging.getLogger(__name__)


class ArchitectureMismatch(ValueError):
    """The architecture choice picked another model than the one the cell runs."""


# -- budgets shared by tiny and lora_budget -------------------------------------------------------
def client_levels(cfg, p: BudgetParams) -> list[float]:
    """Each client's budget fraction: the same for all, or one seeded draw per client (``hetero``,
    the cell seed's ``device-budget`` stream, so ``tiny`` and ``lora_budget`` get the same devices)."""
    n = cfg.fl.num_clients
    if p.budget != "hetero":
        return [float(p.budget)] * n
    rng = seeded_rng(cfg.seed, "device-budget")  # the same stream as ctx.rng("device-budget")
    return [float(x) for x in rng.choice(list(p.levels), size=n)]


def cost_settings(cfg, p: BudgetParams) -> tuple[int, int, dict[str, Any]]:
    """(batch, seq, keyword arguments of the cost model) from the run's settings."""
    fl = cfg.fl
    if fl.train_embeddings:
        raise ValueError("budget-aware methods assume frozen embeddings (fl.train_embeddings: false)")
    return (
        fl.batch_size,
        fl.max_len,
        {"optimizer": fl.optimizer, "momentum": fl.momentum, "backend": p.kernels},
    )


def memory_measures(
    p: BudgetParams, names, num_labels: int, batch: int, seq: int, kw: dict[str, Any], **lora: Any
) -> tuple[dict[str, MeasuredMemory], str]:
    """Per model name the measured-peak ``measure`` of the cost model, and which figure decides
    memory fits (``measured``, or ``analytic`` and why)."""
    if "memory" not in p.constrain:
        return {}, "analytic (memory not constrained)"
    if p.memory_fit == "analytic":
        return {}, "analytic"
    device = "cpu" if p.kernels == "cpu" else "cuda"
    if device == "cuda":
        import torch

        if not torch.cuda.is_available():
            return {}, "analytic (kernels: cuda, but no CUDA device to measure on)"
    settings = {"optimizer": kw["optimizer"], "momentum": kw["momentum"], "device": device, **lora}
    return {n: MeasuredMemory(n, num_labels, batch, seq, **settings) for n in sorted(set(names))}, "measured"


def client_budgets(ref: ArchInfo, levels: list[float], constrain, batch: int, seq: int, **kw) -> list[Budget]:
    full = full_cost(ref, batch, seq, **kw)
    return [Budget.fraction_of(full, f, constrain) for f in levels]


# -- the architecture choice ----------------------------------------------------------------------
@dataclass(frozen=True)
class ArchChoice:
    name: str
    t: dict[str, list[int | None]]  # per candidate, per device: largest fitting suffix (None: sits out)
    score: dict[str, float]  # per candidate: mean t_c, a device that sits out counting as -1

    @property
    def anyone_fits(self) -> bool:
        return any(t is not None for ts in self.t.values() for t in ts)


def choose_architecture(
    archs: dict[str, ArchInfo],
    budgets: list[Budget],
    batch: int,
    seq: int,
    schedule: str = "suffix",
    measures: dict[str, MeasuredMemory] | None = None,
    **kw,
) -> ArchChoice:
    """CAFF's choice: the candidate with the largest mean number of trained blocks over devices;
    ties go to the larger model (more blocks, then more parameters). ``measures``: per candidate, the
    measured peak memory of its configurations (else the analytic memory decides)."""
    fit = largest_window if schedule == "successive" else largest_suffix
    t: dict[str, list[int | None]] = {}
    for name, arch in archs.items():
        memo: dict[Budget, int | None] = {}
        measure = (measures or {}).get(name)
        for b in budgets:
            if b not in memo:
                memo[b] = fit(arch, batch, seq, b, measure=measure, **kw)
        t[name] = [memo[b] for b in budgets]
    score = {n: sum(-1 if x is None else x for x in ts) / max(1, len(ts)) for n, ts in t.items()}

    def size(n: str) -> tuple[int, int]:
        a = archs[n]
        return a.num_blocks, step_cost(a, batch, seq, t=a.num_blocks).trained_params

    best = max(archs, key=lambda n: (score[n], size(n)))
    return ArchChoice(best, t, score)


@dataclass(frozen=True)
class DevicePlan:
    """Everything ``tiny`` decides before round 0 (a pure function of the run config)."""

    levels: list[float]  # per device: budget fraction
    budgets: list[Budget]  # per device: absolute budget
    choice: ArchChoice
    reference: str
    full: StepCost  # the reference's full fine-tuning cost (what the fractions refer to)
    batch: int
    seq: int
    kw: dict[str, Any]
    measures: dict[str, MeasuredMemory]  # per model: measured peaks (empty: analytic memory decides)
    memory_fit: str  # which memory figure decided the fits ("measured" / "analytic ...")
    analytic: ArchChoice | None  # the choice on analytic memory, the cross-check (None: it decided)


@register("tiny")
class Tiny(Method):
    """CAFF (Pfeiffer et al. 2024, arXiv 2411.07826): each device trains the largest suffix of blocks
    (+ head) that fits its memory/FLOPs/upload budget, fixed for the run; devices that fit nothing
    sit out; per-block FedAvg; the architecture with the largest mean trained depth is chosen once."""

    family = "budget"

    Params = TinyParams

    @classmethod
    def plan_devices(cls, p: TinyParams, cfg, num_labels: int, own: ArchInfo | None = None) -> DevicePlan:
        """Budgets and the architecture choice; ``own``: the cell model's ArchInfo if already built."""
        batch, seq, kw = cost_settings(cfg, p)

        def arch(name: str) -> ArchInfo:
            return own if own is not None and name == cfg.model else arch_of(name, num_labels)

        archs = {c: arch(c) for c in p.candidates}
        ref_name = p.reference or max(archs, key=lambda n: (archs[n].num_blocks, archs[n].hidden))
        ref = archs.get(ref_name) or arch(ref_name)
        levels = client_levels(cfg, p)
        measures, memory_fit = memory_measures(p, [*archs, ref_name], num_labels, batch, seq, kw)
        ref_m = measures.get(ref_name)
        budgets = client_budgets(ref, levels, p.constrain, batch, seq, measure=ref_m, **kw)
        choice = choose_architecture(archs, budgets, batch, seq, p.schedule, measures, **kw)
        analytic = None
        if measures:  # the cross-check: the same choice on the analytic memory model
            a_budgets = client_budgets(ref, levels, p.constrain, batch, seq, **kw)
            analytic = choose_architecture(archs, a_budgets, batch, seq, p.schedule, **kw)
        full = full_cost(ref, batch, seq, measure=ref_m, **kw)
        return DevicePlan(
            levels, budgets, choice, ref_name, full, batch, seq, kw, measures, memory_fit, analytic
        )

    @classmethod
    def resolve(cls, p: TinyParams, cfg, num_labels: int) -> tuple[str, dict[str, Any]]:
        """Where every device gets the same suffix of the cell's own model (none sits out), the run is
        ``top_k`` with that depth (``head`` at depth 0): a budget that binds no differently is one run."""
        choice = cls.plan_devices(p, cfg, num_labels).choice
        depths = set(choice.t.get(cfg.model, [None]))
        if choice.name != cfg.model or len(depths) != 1 or None in depths or p.schedule != "suffix":
            return super().resolve(p, cfg, num_labels)
        (t,) = depths
        return ("head", {}) if t == 0 else ("top_k", {"k": t})

    @classmethod
    def select_model(cls, p: TinyParams, cfg, num_labels: int) -> str:
        """The model this method wants the cell to build (for a simulator hook; see the module doc)."""
        return cls.plan_devices(p, cfg, num_labels).choice.name

    def run_info(self) -> dict[str, Any]:
        return {**super().run_info(), **getattr(self, "summary", {})}

    def setup(self) -> None:
        ctx, p = self.ctx, self.p
        own = ctx.cfg.model
        arch = ctx.model.arch
        plan = self.plan_devices(p, ctx.cfg, arch.num_labels, own=arch)
        self.devices = plan
        what = (
            f"budget={p.budget}, constrain={list(p.constrain)}, fractions of {plan.reference}'s full "
            f"fine-tuning cost at batch {plan.batch}, seq {plan.seq}"
        )
        if not plan.choice.anyone_fits:
            head_only = step_cost(arch, plan.batch, plan.seq, t=0, measure=plan.measures.get(own), **plan.kw)
            raise DoesNotFit(
                f"tiny: no device fits even head-only training on any of {list(p.candidates)} ({what}); "
                f"head-only on {own}: " + "; ".join(plan.budgets[0].violations(head_only))
            )
        if plan.choice.name != own:
            scores = ", ".join(f"{n}: {s:.2f}" for n, s in plan.choice.score.items())
            raise ArchitectureMismatch(
                f"tiny: the architecture choice picks '{plan.choice.name}' (mean trained blocks per device, "
                f"-1 = sits out: {scores}; {what}) but the cell runs model '{own}'. Set `model: "
                f"{plan.choice.name}` in the grid (the budgets refer to {plan.reference} and do not change), "
                f"or `candidates: [{own}]` to skip the choice."
            )
        self.t: list[int | None] = plan.choice.t[own]
        self.client_info: list[dict[str, Any]] = []
        for c, (lvl, budget, t) in enumerate(zip(plan.levels, plan.budgets, self.t, strict=True)):
            info: dict[str, Any] = {"budget": lvl, "arch": own, "t": t, "sit_out": t is None}
            if t is not None:
                cost = self._worst_cost(arch, t)
                if not budget.fits(cost):  # largest_suffix/largest_window guarantee it
                    raise AssertionError(f"tiny: client {c} over budget: {budget.violations(cost)}")
                info.update({f"{k}_frac": round(cost.get(k) / plan.full.get(k), 4) for k in RESOURCES})
                info["memory_analytic_frac"] = round(cost.analytic_memory / plan.full.analytic_memory, 4)
                info["memory_fit"] = cost.memory_source if "memory" in p.constrain else "not constrained"
            self.client_info.append(info)
        self.summary = {
            "arch": own,
            "reference": plan.reference,
            "score": plan.choice.score,
            "t": self.t,
            "levels": plan.levels,
            "sit_out": [c for c, t in enumerate(self.t) if t is None],
            "memory_fit": plan.memory_fit,
            "t_analytic": None if plan.analytic is None else plan.analytic.t[own],
            "memory_bytes": self._memory_check(arch),
        }
        log.info("tiny: %s", self.summary)

    def _worst_cost(self, arch: ArchInfo, t: int) -> StepCost:
        d = self.devices
        measure = d.measures.get(self.ctx.cfg.model)
        if self.p.schedule == "successive":  # the costliest window position: the bottom
            return step_cost(arch, d.batch, d.seq, blocks=range(t), measure=measure, **d.kw)
        return step_cost(arch, d.batch, d.seq, t=t, measure=measure, **d.kw)

    def _memory_check(self, arch: ArchInfo) -> dict[str, dict[str, int | None]]:
        """Per trained depth in use: the measured and the analytic peak (bytes), side by side."""
        out = {}
        for t in sorted({t for t in self.t if t is not None}):
            cost = self._worst_cost(arch, t)
            out[str(t)] = {"measured": cost.measured_memory, "analytic": cost.analytic_memory}
        return out

    def window(self, rnd: int, t: int) -> range:
        """Blocks a device with depth ``t`` trains in round ``rnd``."""
        L = self.num_blocks
        if self.p.schedule == "suffix" or t == 0:
            return range(L - t, L)
        start = round(rnd * (L - t) / max(1, self.ctx.cfg.fl.rounds - 1))  # input -> output over the run
        return range(start, start + t)

    def configure_train(self, rnd, clients):
        plans = {}
        for c in clients:
            t, info = self.t[c], self.client_info[c]
            if t is None:
                plans[c] = TrainPlan(frozenset(), head=False, info=dict(info))
            else:
                plans[c] = TrainPlan.of(self.window(rnd, t), **info)
        return plans

    def never_trained_below(self) -> int:
        t = [x for x in getattr(self, "t", []) if x is not None]
        if not t or self.p.schedule == "successive":
            return 0
        return self.num_blocks - max(t)


# -- LoRA under the same budgets ------------------------------------------------------------------
@register("lora_budget")
class LoraBudget(Lora):
    """FedAvg-LoRA (the ``lora`` method) at the largest rank from ``ranks`` that fits every device's
    memory/FLOPs/upload budget (as in ``tiny``); raises DoesNotFit when no rank fits."""

    family = "budget"

    Params = LoraBudgetParams

    def __init__(self, params: LoraBudgetParams, ctx) -> None:
        super().__init__(params, ctx)
        self.budget_params = params

    def run_info(self) -> dict[str, Any]:
        return {**super().run_info(), **getattr(self, "summary", {})}

    @classmethod
    def plan_rank(cls, bp: LoraBudgetParams, cfg, num_labels: int) -> tuple[int, list[float], dict[str, Any]]:
        """(rank, each client's budget level, summary): the largest rank of ``bp.ranks`` that fits every
        device, from the config alone (so a sweep can resolve it before running); DoesNotFit if none."""
        batch, seq, kw = cost_settings(cfg, bp)
        arch = arch_of(cfg.model, num_labels)
        ref_name = bp.reference or cfg.model
        ref = arch if ref_name == cfg.model else arch_of(ref_name, num_labels)
        levels = client_levels(cfg, bp)
        lora = {"lora_targets": tuple(bp.target_modules), "lora_dropout": bp.lora_dropout}
        measures, memory_fit = memory_measures(bp, [cfg.model, ref_name], num_labels, batch, seq, kw, **lora)
        ref_m = measures.get(ref_name)
        # (a full fine-tuning plan: its measurement ignores the LoRA settings)
        budgets = client_budgets(ref, levels, bp.constrain, batch, seq, measure=ref_m, **kw)
        lora_kw = {**lora, **kw, "measure": measures.get(cfg.model)}
        per_client = [largest_rank(arch, batch, seq, b, bp.ranks, **lora_kw) for b in budgets]
        analytic_rank = None
        if measures:  # the cross-check on the analytic memory model
            a_budgets = client_budgets(ref, levels, bp.constrain, batch, seq, **kw)
            fits = [
                largest_rank(arch, batch, seq, b, bp.ranks, **{**lora_kw, "measure": None}) for b in a_budgets
            ]
            analytic_rank = None if None in fits else min(fits)
        if None in per_client:
            c = per_client.index(None)
            r = min(bp.ranks)
            raise DoesNotFit(
                f"lora_budget: no rank in {list(bp.ranks)} fits device {c} (budget {levels[c]} of "
                f"{ref_name}'s full fine-tuning cost, constrain={list(bp.constrain)}, batch {batch}, seq {seq}); "
                f"rank {r} on {cfg.model}: "
                + "; ".join(budgets[c].violations(step_cost(arch, batch, seq, r=r, **lora_kw)))
            )
        rank = min(per_client)
        cost = step_cost(arch, batch, seq, r=rank, **lora_kw)
        summary = {
            "rank": rank,
            "reference": ref_name,
            "levels": levels,
            "memory_fit": memory_fit,
            "rank_analytic": analytic_rank if measures else rank,
            "memory_bytes": {"measured": cost.measured_memory, "analytic": cost.analytic_memory},
        }
        return rank, levels, summary

    @classmethod
    def resolve(cls, params: LoraBudgetParams, cfg, num_labels: int) -> tuple[str, dict[str, Any]]:
        """Plain ``lora`` at the rank the budget allows (two budgets that give one rank are one run)."""
        rank = cls.plan_rank(params, cfg, num_labels)[0]
        return "lora", cls._lora_params(params, rank).model_dump(mode="json")

    @staticmethod
    def _lora_params(bp: LoraBudgetParams, rank: int) -> LoraParams:
        return LoraParams(
            lora_r=rank,
            lora_alpha=bp.lora_alpha,
            lora_dropout=bp.lora_dropout,
            target_modules=bp.target_modules,
        )

    def setup(self) -> None:
        self.rank, self.levels, self.summary = self.plan_rank(
            self.budget_params, self.ctx.cfg, self.ctx.model.arch.num_labels
        )
        log.info("lora_budget: %s", self.summary)
        self.p = self._lora_params(self.budget_params, self.rank)
        super().setup()

    def configure_train(self, rnd, clients):
        plans = super().configure_train(rnd, clients)
        return {
            c: TrainPlan(p.blocks, p.head, p.only, {**p.info, "rank": self.rank, "budget": self.levels[c]})
            for c, p in plans.items()
        }
