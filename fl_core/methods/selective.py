"""Gradient-regulated selective layer fine-tuning (Sun, Xie, Ding, Li, Zhang; arXiv 2408.15600, ISIT 2025).

Each selection round, every sampled client ``i`` scores every block ``j`` at the current global model,
``s_ij = ||mean gradient of its loss w.r.t. block j||²`` over ``score_batches`` batches (−1: one full
local epoch; no optimizer step), and uploads its ``L`` scores. The server normalizes the scores by
their maximum and solves, over the ``N`` sampled clients,

    maximize   Σ_i Σ_j s_ij x_ij  −  λ Σ_j n_j (N − n_j)        x_ij ∈ {0,1},  n_j = Σ_i x_ij
    subject to Σ_j x_ij ≤ b_i   for every client i

exactly as a MILP (:func:`solve_selection`, HiGHS via ``scipy.optimize.milp``; ``n_j`` is one-hot
encoded so the concave penalty becomes linear). ``n_j (N − n_j)`` counts the client pairs that disagree
on block ``j``. Client ``i`` then trains its chosen blocks + head; per-block FedAvg over the clients
that trained each block. Spec: selective.md (project specs).

Modes (``score``): ``grad`` — the paper's method (above); the paper's heuristic baselines, per-client
top-``b_i`` with no penalty: ``rgn`` (``||g_j|| / ||w_j||``, relative gradient norm) and ``snr``
(``Σ_tensors mean(g)² / std(g)``, mean and std over the entries of the client's mean gradient, as in
the official code); and ``top`` / ``bottom`` — the ``b_i`` blocks nearest the output / input, for the
fixed baselines under heterogeneous budgets (no scoring pass). ``rgn`` and ``snr`` are also registered
as methods of their own (thin aliases).

Budgets: ``b`` for every client, or ``budget: hetero``: per-client budgets drawn once per run (seeded)
from a normal(``b_mean``, ``b_std``) truncated to ``[b_min − ½, b_max + ½]`` and rounded, i.e. integers
in ``[b_min, b_max]`` (the official code draws a half-normal the same way). Budgets are never exceeded.

After solving, each client's set is padded up to ``b_i`` with its best unselected blocks
(``fill_budget: true``, the default, as the official ``find_selection_set``), so every method of a
budget comparison trains exactly ``min(b_i, L)`` blocks; ``fill_budget: false`` keeps the raw MILP
solution (an ablation: with a penalty, clients then leave budget unused).

Departures from the paper / official code (named):

- the official code's bugs are not reproduced: per-block FedAvg over every client that trained a block
  (not only the first client's blocks); the fill never exceeds ``b_i`` (its off-by-one did);
- ``λ`` acts on max-normalized scores (the paper's value is unknown; the grids ablate {0, 0.1, 1});
- the scoring pass can be capped (``score_batches``; the default grid uses 3 batches, the paper one epoch);
- blocks below a client's lowest selected block run frozen in eval mode (no dropout), the rest in train
  mode (:data:`fl_core.methods.base.DROPOUT_NOTE`); the scoring pass runs every block in train mode.

The scoring pass is client work: it is recorded as a ``"score"`` cost row (forward + backward through
every block, the upload of ``L`` float32 scores). Scores and selections of every selection round are
kept in ``self.history``; each plan's ``info`` holds the client's budget and scores.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from scipy.optimize import Bounds, LinearConstraint, milp
from scipy.stats import truncnorm

from fl_core.budget_model import pass_memory
from fl_core.flops import BYTES_PER_PARAM
from fl_core.methods.base import Method, TrainPlan, register
from fl_core.params.selective import HeuristicParams, SelectiveParams
from fl_core.passes import ExtraPass
from fl_core.trainer import Loop

log = logging.getLogger(__name__)

EPS = 1e-12


# -- the selection problem ------------------------------------------------------------------------
def top_b_selection(scores: np.ndarray, budgets: np.ndarray) -> np.ndarray:
    """Per-client top-``b_i`` by score (ties: lower block index first), as a bool matrix (N, L)."""
    scores = np.asarray(scores, dtype=float)
    n, num = scores.shape
    x = np.zeros((n, num), dtype=bool)
    for i in range(n):
        order = np.lexsort((np.arange(num), -scores[i]))
        x[i, order[: max(0, min(int(budgets[i]), num))]] = True
    return x


def selection_objective(x: np.ndarray, scores: np.ndarray, lam: float) -> float:
    """``Σ s_ij x_ij − λ Σ_j n_j (N − n_j)`` of a selection ``x`` (N, L)."""
    x = np.asarray(x, dtype=float)
    n_j = x.sum(axis=0)
    return float((np.asarray(scores) * x).sum() - lam * (n_j * (x.shape[0] - n_j)).sum())


def _milp_selection(scores: np.ndarray, budgets: np.ndarray, lam: float, time_limit: float) -> np.ndarray:
    """The exact MILP. Variables: ``x_ij`` (N·L, row-major), then ``z_jm`` (L·(N+1)) with
    ``z_jm = 1 ⇔ n_j = m``: ``Σ_m z_jm = 1`` and ``Σ_i x_ij = Σ_m m z_jm``, so the penalty
    ``λ Σ_j Σ_m m (N − m) z_jm`` is linear. Raises ``RuntimeError`` if HiGHS returns no solution."""
    n, num = scores.shape
    nx, nz = n * num, num * (n + 1)
    m = np.arange(n + 1)
    c = np.concatenate([-scores.ravel(), np.tile(lam * m * (n - m), num)])  # milp minimizes
    rows_budget = np.zeros((n, nx + nz))
    for i in range(n):
        rows_budget[i, i * num : (i + 1) * num] = 1.0
    rows_onehot = np.zeros((num, nx + nz))
    rows_count = np.zeros((num, nx + nz))
    for j in range(num):
        rows_onehot[j, nx + j * (n + 1) : nx + (j + 1) * (n + 1)] = 1.0
        rows_count[j, [i * num + j for i in range(n)]] = 1.0
        rows_count[j, nx + j * (n + 1) : nx + (j + 1) * (n + 1)] = -m
    constraints = [
        LinearConstraint(rows_budget, -np.inf, np.asarray(budgets, dtype=float)),
        LinearConstraint(rows_onehot, 1.0, 1.0),
        LinearConstraint(rows_count, 0.0, 0.0),
    ]
    res = milp(
        c,
        integrality=np.ones(nx + nz),
        bounds=Bounds(0, 1),
        constraints=constraints,
        options={"disp": False, "mip_rel_gap": 0.0, "time_limit": time_limit},
    )
    if res.x is None:
        raise RuntimeError(f"MILP returned no solution (status {res.status}: {res.message})")
    if res.status != 0:
        log.warning(
            "selective: MILP stopped early (status %s: %s); using its best feasible selection",
            res.status,
            res.message,
        )
    return np.asarray(res.x[:nx]).reshape(n, num) > 0.5


def solve_selection(
    scores: np.ndarray, budgets, lam: float, time_limit: float = 60.0, info: dict[str, Any] | None = None
) -> np.ndarray:
    """Solve the selection problem exactly (MILP); bool matrix (N, L), ``x[i, j]``: client ``i`` trains
    block ``j``. Falls back to per-client top-``b_i`` (and logs a warning) if the solver fails or its
    answer breaks a budget. ``info`` (if given) receives ``solver``: ``"milp"`` or ``"fallback"``."""
    scores = np.nan_to_num(np.asarray(scores, dtype=float), nan=0.0, posinf=0.0, neginf=0.0)
    budgets = np.minimum(np.asarray(budgets, dtype=int), scores.shape[1])
    try:
        x = _milp_selection(scores, budgets, float(lam), time_limit)
        if x.shape != scores.shape or (x.sum(axis=1) > budgets).any():
            raise RuntimeError("MILP solution breaks a budget")
        solver = "milp"
    except Exception as err:  # noqa: BLE001 - any solver failure falls back, loudly
        log.warning("selective: MILP solver failed (%s); falling back to per-client top-b", err)
        x = top_b_selection(scores, budgets)
        solver = "fallback"
    if info is not None:
        info["solver"] = solver
    return x


def fill_to_budget(x: np.ndarray, scores: np.ndarray, budgets) -> np.ndarray:
    """Pad each client's selection with its best unselected blocks up to ``b_i`` (never beyond), as the
    official code does after its solver (without its off-by-one that exceeds the budget)."""
    x = np.array(x, dtype=bool)
    for i in range(x.shape[0]):
        for j in np.lexsort((np.arange(x.shape[1]), -np.asarray(scores)[i])):
            if x[i].sum() >= min(int(budgets[i]), x.shape[1]):
                break
            x[i, j] = True
    return x


def draw_budgets(
    rng: np.random.Generator, num_clients: int, b_min: int, b_max: int, mean: float, std: float
) -> np.ndarray:
    """Integers in ``[b_min, b_max]``: a normal(mean, std) truncated to ``[b_min − ½, b_max + ½]``, rounded."""
    lo, hi = b_min - 0.5, b_max + 0.5
    draw = truncnorm.rvs(
        (lo - mean) / std, (hi - mean) / std, loc=mean, scale=std, size=num_clients, random_state=rng
    )
    return np.clip(np.rint(draw), b_min, b_max).astype(int)


def _shapes(ctx, batches) -> set[tuple[int, int]]:
    """(batch size, padded length) of each batch: what the pass's memory peak depends on."""
    return {(len(b), int(ctx.lengths(b).max())) for b in batches}


# -- params ---------------------------------------------------------------------------------------
# -- the method -----------------------------------------------------------------------------------
@register("selective")
class Selective(Method):
    """Per-client layer selection by local gradient norms with a cross-client disagreement penalty
    (Sun et al. 2024), solved exactly as a MILP; ``score`` picks the paper's heuristic baselines."""

    family = "selective"

    Params = SelectiveParams
    mode: str = ""  # fixed by the aliases; else params.score

    def __init__(self, params, ctx) -> None:
        super().__init__(params, ctx)
        self.mode = self.mode or params.score
        self.lam = getattr(params, "lam", 0.0) if self.mode == "grad" else 0.0
        n = ctx.cfg.fl.num_clients
        if params.budget == "homo":
            self.budgets = np.full(n, params.b, dtype=int)
        else:
            mean = params.b_min if params.b_mean is None else params.b_mean
            self.budgets = draw_budgets(
                ctx.rng("selective-budgets"), n, params.b_min, params.b_max, mean, params.b_std
            )
        self.selection: dict[int, list[int]] = {}  # client -> blocks of its last selection
        self.popular: list[int] = []  # blocks by popularity at the last selection round
        self.history: list[dict[str, Any]] = []

    # -- scoring ---------------------------------------------------------------------------------
    def score_client(self, rnd: int, cid: int) -> np.ndarray:
        """The client's ``L`` scores at the current global model; records the pass as a cost row."""
        ctx, model = self.ctx, self.ctx.model
        num = self.num_blocks
        names = [n for j in range(num) for n in model.names_in(j)]
        plan = TrainPlan.of(range(num), head=False)
        batches = ctx.client_batches(cid, rnd, 0)
        if self.p.score_batches > 0:
            batches = batches[: self.p.score_batches]
        total = sum(len(b) for b in batches)
        ep = ExtraPass(ctx, rnd, cid, "score", bytes_up=BYTES_PER_PARAM * num)
        torch.manual_seed(ctx.torch_seed("score", rnd, cid))
        for n in names:
            model.params[n].grad = None

        def loss_fn(logits, y):  # Σ over samples / total: the accumulated grad is the pass's mean gradient
            return F.cross_entropy(logits, y, reduction="sum") / total

        try:
            ep.train(plan, names, [batches], Loop(opt=None, loss_fn=loss_fn, nonfinite="keep"))
            scores = self._grad_scores(names)
        finally:
            for n in names:
                model.params[n].grad = None
        ep.peak_memory(pass_memory(model, names, 0, _shapes(ctx, batches)))  # grads, no optimizer
        ep.close()
        if not np.isfinite(scores).all():
            log.warning("selective: non-finite scores for client %d at round %d; set to 0", cid, rnd)
            scores = np.nan_to_num(scores, nan=0.0, posinf=0.0, neginf=0.0)
        return scores

    @torch.no_grad()
    def _grad_scores(self, names: list[str]) -> np.ndarray:
        """Per-block score of the accumulated gradients (``grad``: Σ‖g‖², ``snr``, ``rgn``)."""
        model, num = self.ctx.model, self.num_blocks
        scores = np.zeros(num)
        wnorm = np.zeros(num)
        for n in names:
            j = model.group_of[n]
            g = model.params[n].grad
            if g is None:
                continue
            g = g.detach().to(torch.float64)
            if self.mode == "snr":
                std = float(g.std(correction=0)) if g.numel() > 1 else 0.0
                scores[j] += float(g.mean()) ** 2 / (std + EPS)
            else:
                scores[j] += float(g.square().sum())
            if self.mode == "rgn":
                wnorm[j] += float(model.params[n].detach().to(torch.float64).square().sum())
        if self.mode == "rgn":
            scores = np.sqrt(scores) / (np.sqrt(wnorm) + EPS)
        return scores

    # -- selection -------------------------------------------------------------------------------
    def _position_scores(self) -> np.ndarray:
        pos = np.arange(self.num_blocks, dtype=float)
        return pos + 1 if self.mode == "top" else self.num_blocks - pos

    def select(self, rnd: int, clients: list[int]) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
        """(selection (N, L) bool, scores (N, L), info) for the sampled ``clients``."""
        budgets = self.budgets[clients]
        info: dict[str, Any] = {}
        if self.mode in ("top", "bottom"):
            scores = np.tile(self._position_scores(), (len(clients), 1))
            return top_b_selection(scores, budgets), scores, {"solver": "fixed"}
        scores = np.stack([self.score_client(rnd, c) for c in clients])
        if self.mode != "grad":
            return top_b_selection(scores, budgets), scores, {"solver": "top-b"}
        top = scores.max(initial=0.0)
        norm = scores / top if top > 0 else scores
        x = solve_selection(norm, budgets, self.lam, info=info)
        if self.p.fill_budget:
            x = fill_to_budget(x, norm, budgets)
        info["objective"] = selection_objective(x, norm, self.lam)
        info["score_max"] = float(top)
        return x, norm, info

    def configure_train(self, rnd, clients):
        if rnd % self.p.select_every == 0 or self.mode in ("top", "bottom"):
            x, scores, info = self.select(rnd, clients)
            for i, c in enumerate(clients):
                self.selection[c] = np.flatnonzero(x[i]).tolist()
            counts = x.sum(axis=0)
            self.popular = np.lexsort((np.arange(self.num_blocks), -scores.sum(axis=0), -counts)).tolist()
            self.history.append(
                {
                    "round": rnd,
                    "clients": list(clients),
                    "budgets": self.budgets[clients].tolist(),
                    "scores": scores.tolist(),
                    "selection": [self.selection[c] for c in clients],
                    **info,
                }
            )
            score_of = {c: scores[i].tolist() for i, c in enumerate(clients)}
        else:
            score_of = {}
        plans = {}
        for c in clients:
            b = int(self.budgets[c])
            # A client never scored keeps to the blocks most chosen at the last selection round.
            blocks = self.selection[c] if c in self.selection else sorted(self.popular[:b])
            plans[c] = TrainPlan.of(blocks, budget=b, scores=score_of.get(c))
        return plans

    def state_dict(self):
        return {
            "budgets": self.budgets.tolist(),
            "selection": dict(self.selection),
            "popular": list(self.popular),
            "history": list(self.history),
        }

    def load_state_dict(self, state):
        self.budgets = np.asarray(state["budgets"], dtype=int)
        self.selection = {int(k): list(v) for k, v in state.get("selection", {}).items()}
        self.popular = list(state.get("popular", []))
        self.history = list(state.get("history", []))


@register("rgn")
class RGN(Selective):
    """Per-client top-``b_i`` blocks by relative gradient norm ``||g||/||w||`` (a baseline of Sun et al.)."""

    family = "selective"

    Params = HeuristicParams
    mode = "rgn"


@register("snr")
class SNR(Selective):
    """Per-client top-``b_i`` blocks by gradient SNR ``Σ mean(g)²/std(g)`` (a baseline of Sun et al.)."""

    family = "selective"

    Params = HeuristicParams
    mode = "snr"
