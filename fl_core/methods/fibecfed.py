r"""FibecFed (Liu, Ren, Jin, Zhang, Zhou, Valduriez, Dou, EMNLP 2024, arXiv 2410.00131):
Fisher-information curriculum + global aggregation layers (GAL) + sparse LoRA in the personal layers.
Spec: fibecfed.md (project specs). All three mechanisms are decided ONCE, in :meth:`setup`, for
every client (eagerly, before round 0; their client compute is recorded as ``kind="setup"`` costs).

1. Fisher curriculum (per client). Difficulty of sample i at the initial model θ₀ (pretrained +
   LoRA init), over the trainable parameters (LoRA + head)::

       d_i = tr F̂_i = Σ_θ (∂ℓ_i/∂θ)²                                   (per-sample gradients: torch.func)

   The client's data are cut once into seeded batches, sorted by mean d (easiest first). Linear
   pacing: in round t (of T) the client uses its first

       n_t = ⌈N_batches · min(1, b0 + (1 − b0)·t/(a·T))⌉,   b0 = 0.6, a = 0.8

   batches, in that order, every local epoch (a fixed per-client batching, not the simulator's shuffle).
   Under an ``fl.local_steps`` cap the round's steps are a seeded draw (per client and round) of
   ``local_steps`` batches from that pool, easiest first (:func:`draw_from_pool`): a client then
   sees different rows across rounds, and more of them as the pool grows.

2. GAL. Per client, one batch of 10 samples: e = input (word) embeddings, g = ∇_e ℓ,
   e' = e + ε·g/‖g‖ (ε = 0.5, ‖·‖ over the whole batch tensor). With H_l the output of block l at the
   pooled position, a [10, d] matrix ([CLS], index 0; for a mean-pooled model such as MiniLM-L6 the
   masked token mean, what its head reads: :meth:`BlockModel.summary`)::

       s_l = | ‖H_l(e')‖_F − ‖H_l(e)‖_F | / ‖H_l(e)‖_F

   The server sums s over clients; the N_gal least sensitive blocks are the GAL (their LoRA is
   FedAvg-ed), the rest are personal layers (PL): their LoRA never leaves the client. Default
   N_gal = round(0.75·L), half up (:func:`default_n_gal`): 5 of 6 blocks on MiniLM-L6.

3. Sparse update in the PL. Each client trains the global LoRA (+ head) for 3 epochs with AdamW and
   no mask; after each epoch, for every PL projection, with ΔW = B·A·scaling::

       G = ((ΔW_new − ΔW_old)/lr)²,   f_j = mean_k G_jk  (output neuron j),   F ← γF + (1−γ)f  (γ = 0.5, F₀ = 0)

   The ρ = 5% lowest-F neurons over all PL projections of the client (one global threshold) are
   masked: their rows of B get zero gradient (``after_backward``) and so stay exactly zero (B starts
   at zero). The trial weights are discarded.

Training: the config's local optimizer (AdamW, constant lr, grad clip); aggregation: FedAvg of GAL
LoRA + head weighted by the samples in each client's paced pool this round (the paper's batch
weighting with actual batch sizes; independent of an ``fl.local_steps`` cap). Each client's PL LoRA is
kept in the method (CPU) across rounds; a client that has not trained yet starts from the global init.
Evaluation: :meth:`personalized_eval` (each client's test split with global GAL + its own PL,
predictions pooled) next to the simulator's global-model evaluation.

Departures from the paper / spec (named):

- under a ``local_steps`` cap (not the paper's setting: it runs whole local epochs) the pool is
  sampled per round, not cut to its first batches (above); without a cap the pacing is the spec's;
- ``n_gal`` rounds half up (the spec's round(0.75·L) is ambiguous at L = 6);
- LoRA dropout is the shared ``LORA_DROPOUT`` (0.05, the spec's value), the same as ``lora``;
- the Fisher/GAL probes run in eval mode (no dropout); the frozen-prefix note of
  :data:`fl_core.methods.base.DROPOUT_NOTE` does not apply here (every block carries trained LoRA);
- all three mechanisms are decided once before round 0, as the authors' code caches them.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from functools import partial
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from fl_core.aggregate import per_block_fedavg
from fl_core.budget_model import pass_memory
from fl_core.context import RunContext
from fl_core.evaluate import metrics, predict
from fl_core.evaluate_lm import lm_metrics, token_stats
from fl_core.flops import BYTES_PER_PARAM
from fl_core.method_view import MethodView
from fl_core.methods.base import Method, TrainPlan, register
from fl_core.models import HEAD
from fl_core.models.lora import LORA_TAG, LoraPair, lora_pairs
from fl_core.params.fibecfed import FibecFedParams
from fl_core.passes import ExtraPass
from fl_core.trainer import Hooks, Loop, make_optimizer


# -- 1. Fisher curriculum ------------------------------------------------------------------------
class _BlocksAndHead(nn.Module):
    """Blocks + head of the BlockModel as a module, so ``functional_call`` can swap its parameters
    (``hf.<name>``). The embedding output and the attention mask are computed outside (no trainable
    parameters there; HF's mask creation has data-dependent branches that ``vmap`` cannot trace)."""

    def __init__(self, model) -> None:
        super().__init__()
        self.hf = model.hf
        self._bm = [model]  # a list, so the view is not registered as a submodule

    def forward(self, h: torch.Tensor, mask: torch.Tensor | None, tokens: torch.Tensor) -> torch.Tensor:
        bm = self._bm[0]
        for i in range(bm.num_blocks):
            h = bm.run_block(i, h, mask)
        return bm.run_head(h, tokens)


@torch.no_grad()
def _embed_eval(ctx: MethodView | RunContext, ids: torch.Tensor, mask: torch.Tensor):
    return ctx.model.embed(ids, mask)


def per_sample_fisher_trace(
    ctx: MethodView | RunContext,
    idx: np.ndarray,
    names: list[str],
    chunk: int | None = None,
    split: str = "train",
) -> np.ndarray:
    """Per-sample trace of the diagonal empirical Fisher, Σ_{θ ∈ names} (∂ℓ_i/∂θ)², at the model's
    current weights in eval mode (no dropout), via ``torch.func`` (vmap over grad of a
    ``functional_call``). Samples run in chunks of ``chunk`` (default: the FL batch size), each
    padded to its longest row (the attention mask hides the padding)."""
    from torch.func import functional_call, grad, vmap
    from torch.utils._pytree import tree_map

    model = ctx.model
    tail = _BlocksAndHead(model)
    params = {f"hf.{n}": model.params[n].detach() for n in names}

    def loss_one(p, h, m, t, i, y):
        logits = functional_call(
            tail, p, (h[None], None if m is None else tree_map(lambda x: x[None], m), t[None])
        )
        logits, target = model.loss_view(logits, i[None], t[None], y[None])  # an LM: next tokens
        return F.cross_entropy(logits.float(), target)

    was_training = model.hf.training
    model.hf.eval()
    chunk = chunk or ctx.cfg.fl.batch_size
    out = np.empty(len(idx), dtype=np.float64)
    try:
        for s in range(0, len(idx), chunk):
            ids, mask, y = ctx.tensors(idx[s : s + chunk], split)
            h, ext = _embed_eval(ctx, ids, mask)
            with warnings.catch_warnings():  # "no batching rule for sdpa ... performance drop" (still exact)
                warnings.filterwarnings("ignore", message=".*batching rule.*")
                dims = (None, 0, None if ext is None else 0, 0, 0, 0)  # a decoder's mask: a tuple
                g = vmap(grad(loss_one), in_dims=dims)(params, h, ext, mask, ids, y)
            tr = sum(v.detach().double().pow(2).flatten(1).sum(1) for v in g.values())
            out[s : s + chunk] = tr.cpu().numpy()
    finally:
        model.hf.train(was_training)
    return out


def pacing_count(num_batches: int, rnd: int, rounds: int, b0: float = 0.6, a: float = 0.8) -> int:
    """n_t = ⌈N · min(1, b0 + (1 − b0)·t/(a·T))⌉ (at least 1 when N > 0)."""
    frac = min(1.0, b0 + (1.0 - b0) * rnd / (a * rounds))
    return min(num_batches, max(1 if num_batches else 0, math.ceil(num_batches * frac - 1e-9)))


def curriculum_batches(idx: np.ndarray, scores: np.ndarray, batch_size: int, rng: np.random.Generator):
    """Cut the (seeded-shuffled) indices into batches and sort them by mean score, easiest first.
    ``scores[j]`` belongs to ``idx[j]``. Returns (batches, mean score per batch)."""
    perm = rng.permutation(len(idx))
    cuts = [perm[i : i + batch_size] for i in range(0, len(perm), batch_size)]
    means = np.array([scores[c].mean() for c in cuts])
    order = np.argsort(means, kind="stable")
    return [idx[cuts[j]] for j in order], means[order]


def draw_from_pool(pool: list[np.ndarray], cap: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Under a cap of ``cap`` steps: ``cap`` pool batches drawn without replacement by ``rng`` first,
    then the rest of the pool, each part in curriculum order (easiest first). The cap then trains a
    seeded draw from the whole current pool, not always its first ``cap`` batches."""
    if cap >= len(pool):
        return pool
    pick = np.sort(rng.choice(len(pool), cap, replace=False))
    rest = np.setdiff1d(np.arange(len(pool)), pick)
    return [pool[j] for j in pick] + [pool[j] for j in rest]


def default_n_gal(num_blocks: int) -> int:
    """The spec's N_gal = round(0.75·L), rounding half UP (⌊0.75·L + ½⌋, not Python's half-to-even):
    L = 6 → 4.5 → 5 GAL blocks and 1 personal block; L = 2 → 1.5 → 2 (no personal block)."""
    return math.floor(0.75 * num_blocks + 0.5)


# -- 2. GAL sensitivity ----------------------------------------------------------------------------
def gal_sensitivity(ctx: MethodView | RunContext, idx: np.ndarray, eps: float = 0.5) -> np.ndarray:
    """s_l per block on one batch: relative change of ‖summary(H_l)‖_F under the embedding step
    e' = e + eps·g/‖g‖ (g = ∇_e loss), at the model's current weights in eval mode."""
    model = ctx.model
    was_training = model.hf.training
    model.hf.eval()
    try:
        ids, mask, y = ctx.tensors(idx)
        with torch.no_grad():
            e0 = model.token_embeddings(ids)
        e = e0.clone().requires_grad_(True)
        hs = model.hidden_states(ids, mask, inputs_embeds=e)
        logits, target = model.loss_view(model.run_head(hs[-1], mask), ids, mask, y)
        loss = F.cross_entropy(logits.float(), target)
        (g,) = torch.autograd.grad(loss, e)
        with torch.no_grad():
            e2 = e0 + eps * g / g.norm().clamp_min(1e-12)
            hs2 = model.hidden_states(ids, mask, inputs_embeds=e2)
            n1 = torch.stack([model.summary(h, mask).float().norm() for h in hs])
            n2 = torch.stack([model.summary(h, mask).float().norm() for h in hs2])
            s = (n2 - n1).abs() / n1.clamp_min(1e-12)
    finally:
        model.hf.train(was_training)
    return s.double().cpu().numpy()


# -- the method ------------------------------------------------------------------------------------
@register("fibecfed")
class FibecFed(Method):
    """FibecFed (Liu et al. 2024): Fisher curriculum, shared GAL LoRA + personal PL LoRA, sparse PL update."""

    family = "lora"

    Params = FibecFedParams
    personalized = True

    def __init__(self, params, ctx) -> None:
        super().__init__(params, ctx)
        self.personal: dict[int, dict[str, torch.Tensor]] = {}  # cid -> PL LoRA (CPU)
        self.masks: dict[int, dict[str, torch.Tensor]] = {}  # cid -> B name -> bool rows (device)
        self.order: dict[int, list[np.ndarray]] = {}  # cid -> curriculum batches, easiest first
        self.difficulty: dict[int, np.ndarray] = {}  # cid -> per-sample Fisher trace (client order)

    @property
    def n_gal(self) -> int:
        n = self.p.n_gal
        if n == "all":
            return self.num_blocks
        return default_n_gal(self.num_blocks) if n is None else int(n)

    # -- setup: everything is decided once, before round 0 ------------------------------------
    def setup(self) -> None:
        ctx, p, model = self.ctx, self.p, self.ctx.model
        ctx.add_lora(p.lora_r, p.lora_alpha, p.lora_dropout, p.target_modules)
        self.plan = TrainPlan.of(range(self.num_blocks), only=LORA_TAG)
        self.names = ctx.trainable_names(self.plan)  # LoRA of every block + head
        self.lora_names = [n for n in self.names if LORA_TAG in n]
        n_clients = ctx.num_clients
        trainable = model.numel(self.names)
        passes = {c: ExtraPass(ctx, -1, c, "setup", trainable_params=trainable) for c in range(n_clients)}
        # 1 + 2: per-client scoring at the initial model
        sens = np.zeros(self.num_blocks)
        self.gal_scores: dict[int, list[float]] = {}
        bs = ctx.cfg.fl.batch_size
        for c in range(n_clients):
            idx, ep = ctx.client_rows(c), passes[c]
            if len(idx) == 0:
                self.order[c] = []
                continue
            if p.curriculum:
                fisher = ep.measure(
                    partial(per_sample_fisher_trace, ctx, idx, self.names),
                    idx,
                    chunk=bs,
                    plan=self.plan,
                    names=self.names,
                )
                self.difficulty[c] = fisher
                order = partial(curriculum_batches, idx, fisher, bs, ctx.rng("fibecfed-batches", c))
                self.order[c], _ = ep.timed(order)
            gidx = np.sort(ctx.rng("fibecfed-gal", c).permutation(idx)[: p.gal_samples])
            # the probe: forward, ∇ wrt the embeddings through every block (no weight trained), forward again
            s_c = ep.measure(partial(gal_sensitivity, ctx, gidx, p.gal_eps), gidx, forwards=2)
            self.gal_scores[c] = s_c.tolist()
            sens += s_c
            ep.upload(BYTES_PER_PARAM * self.num_blocks)  # the client sends its s_l to the server
        self.sensitivity = sens
        gal = np.argsort(sens, kind="stable")[: self.n_gal]
        self.gal = sorted(int(b) for b in gal)
        self.pl = sorted(set(range(self.num_blocks)) - set(self.gal))
        self.pl_names = [n for n in self.lora_names if model.group_of[n] in self.pl]
        self.pl_init = {n: model.params[n].detach().cpu().clone() for n in self.pl_names}
        self.plan = TrainPlan.of(range(self.num_blocks), only=LORA_TAG, gal=self.gal, pl=self.pl)
        # 3: neuron masks from trial epochs
        pairs = [q for q in lora_pairs(model) if q.block in self.pl]
        if p.mask_ratio > 0 and pairs:
            for c in range(n_clients):
                if ctx.num_samples(c) == 0:
                    continue
                self.masks[c] = self._trial_masks(c, pairs, passes[c])
        for c in range(n_clients):
            passes[c].peak_memory(self._setup_memory(c))
            passes[c].close()

    def _setup_memory(self, cid: int) -> int:
        """Analytic peak of client ``cid``'s setup passes (the cost table's memory column): the Fisher
        pass (vmap per-sample grads over chunks of a batch), the GAL probe, the AdamW trial epochs."""
        ctx, idx = self.ctx, self.ctx.client_rows(cid)
        if len(idx) == 0:
            return 0
        bs, model = ctx.cfg.fl.batch_size, ctx.model
        seq = int(ctx.lengths(idx).max())  # the client's longest row: the worst batch
        shape = {(min(bs, len(idx)), seq)}
        peaks = [pass_memory(model, [], 0, {(min(self.p.gal_samples, len(idx)), seq)})]  # GAL: ∇ wrt e
        if self.p.curriculum:
            peaks.append(pass_memory(model, self.names, 0, shape, per_sample=True))
        if self.masks:
            peaks.append(pass_memory(model, self.names, 0, shape, "adamw"))
        return max(peaks)

    def _trial_masks(self, cid: int, pairs: list[LoraPair], extra: ExtraPass) -> dict[str, torch.Tensor]:
        """Trial epochs of the global LoRA (+ head) without mask; EMA of per-neuron ΔW-change scores;
        returns the masked rows of B per PL projection. The model is restored afterwards."""
        ctx, p, model = self.ctx, self.p, self.ctx.model
        snapshot = model.state(self.names)
        torch.manual_seed(ctx.torch_seed("fibecfed-trial", cid))
        params = [model.params[n] for n in self.names]
        opt = make_optimizer(
            params, ctx, kind="adamw"
        )  # the spec's trial optimizer, whatever fl.optimizer is
        lr = opt.param_groups[0]["lr"]
        with torch.no_grad():
            prev = {q.b: q.delta_weight(model).float() for q in pairs}
        score = {q.b: torch.zeros(prev[q.b].shape[0], device=ctx.device) for q in pairs}

        @torch.no_grad()
        def epoch_end(ep: int) -> None:  # f_j = mean_k ((ΔW_new − ΔW_old)/lr)², F ← γF + (1−γ)f
            for q in pairs:
                new = q.delta_weight(model).float()
                f = ((new - prev[q.b]) / lr).pow(2).mean(dim=1)
                score[q.b] = p.mask_ema * score[q.b] + (1 - p.mask_ema) * f
                prev[q.b] = new

        idx_all, bs = ctx.client_rows(cid), ctx.cfg.fl.batch_size
        epochs = []
        for ep in range(p.mask_epochs):
            perm = idx_all[ctx.rng("fibecfed-trial-data", cid, ep).permutation(len(idx_all))]
            epochs.append([perm[s : s + bs] for s in range(0, len(perm), bs)])
        try:
            extra.train(
                self.plan,
                self.names,
                epochs,
                Loop(opt=opt, nonfinite="skip", hooks=Hooks(epoch_end=epoch_end)),
            )
        finally:
            model.load(snapshot)
        flat = torch.cat([score[q.b] for q in pairs])
        k = int(round(p.mask_ratio * flat.numel()))
        masked = torch.zeros(flat.numel(), dtype=torch.bool, device=flat.device)
        if k > 0:
            masked[torch.argsort(flat, stable=True)[:k]] = True
        out, start = {}, 0
        for q in pairs:
            n = score[q.b].numel()
            out[q.b] = masked[start : start + n].clone()
            start += n
        return out

    @classmethod
    def adjust_cell(cls, cfg: Any, num_train: int) -> Any:
        """The paper's own local epochs per round (``local_epochs``: 2 in Liu et al.), where set."""
        epochs = FibecFedParams(**cfg.method.params).local_epochs
        if epochs is None or epochs == cfg.fl.local_epochs:
            return cfg
        return cfg.model_copy(update={"fl": cfg.fl.model_copy(update={"local_epochs": epochs})})

    # -- rounds -------------------------------------------------------------------------------
    def configure_train(self, rnd, clients):
        return self.same_for_all(clients, self.plan)

    def pool(self, rnd: int, cid: int) -> list[np.ndarray]:
        """The curriculum's current pool: the client's easiest ``n_t`` batches, easiest first."""
        fixed = self.order[cid]
        return fixed[
            : pacing_count(len(fixed), rnd, self.ctx.cfg.fl.rounds, self.p.pacing_b0, self.p.pacing_a)
        ]

    def order_batches(self, rnd, cid, batches):
        """The pool, easiest first; under an ``fl.local_steps`` cap a seeded per-(client, round) draw
        from the pool comes first (:func:`draw_from_pool`), so the capped steps do not replay the
        same easiest batches every round."""
        if not self.p.curriculum:
            return batches
        cap = self.ctx.cfg.fl.local_steps
        pool = self.pool(rnd, cid)
        return draw_from_pool(pool, cap, self.ctx.rng("fibecfed-draw", cid, rnd)) if cap else pool

    def _load_personal(self, cid: int) -> None:
        state = self.personal.get(cid, self.pl_init)
        self.ctx.model.load({n: v.to(self.ctx.device) for n, v in state.items()})

    def client_begin(self, rnd, cid, plan):
        self._load_personal(cid)

    def after_backward(self, cid, plan):
        for name, rows in self.masks.get(cid, {}).items():
            g = self.ctx.model.params[name].grad
            if g is not None:
                g[rows] = 0.0

    def keep_local(self, cid, plan):
        return set(self.pl_names)  # the PL LoRA never leaves the client

    def client_end(self, rnd, cid, plan, update):
        model = self.ctx.model
        self.personal[cid] = {n: model.params[n].detach().cpu().clone() for n in self.pl_names}

    def aggregate(self, rnd, updates):
        """FedAvg of GAL LoRA + head weighted by each client's paced pool this round, counted in samples:
        the paper weights by its batches, here with their actual sizes (a ragged last batch counts as
        its rows). Under an ``fl.local_steps`` cap every client runs the same number of batches, so the
        batches *run* would weight clients uniformly; the pool keeps the paper's data-size weighting."""
        weighted = [
            dataclasses.replace(u, num_samples=sum(len(b) for b in self.pool(rnd, u.cid))) for u in updates
        ]
        new = per_block_fedavg(weighted, self.ctx.global_values)
        group = self.ctx.model.group_of
        assert all(group[n] == HEAD or group[n] in self.gal for n in new), "PL LoRA must not be aggregated"
        return new

    def run_info(self) -> dict[str, Any]:
        """The GAL/PL split and how it was decided, and how batches were drawn (for the report)."""
        cap = self.ctx.cfg.fl.local_steps
        return {
            **super().run_info(),
            "gal": getattr(self, "gal", None),
            "pl": getattr(self, "pl", None),
            "n_gal": self.n_gal,
            "n_gal_rule": "round(0.75*L) half up" if self.p.n_gal is None else f"set: {self.p.n_gal}",
            "batches": (
                "simulator shuffle (curriculum off)"
                if not self.p.curriculum
                else f"seeded draw of {cap} batches per round from the paced pool"
                if cap
                else "the paced pool, easiest first, every epoch"
            ),
        }

    # -- evaluation ---------------------------------------------------------------------------
    def state_bytes(self) -> int:
        """Client-side memory of the personal state: PL LoRA tensors kept + neuron masks (1 B each)."""
        pl = sum(v.numel() * v.element_size() for s in self.personal.values() for v in s.values())
        return pl + sum(m.numel() for s in self.masks.values() for m in s.values())

    def personalized_eval(self) -> dict[str, float] | None:
        """Each client's own test split with the global GAL LoRA + head and its own PL LoRA (the
        init for a client that never trained); predictions pooled over clients."""
        ctx = self.ctx
        if not ctx.client_test:
            return None
        preds, labels, loss, tokens = [], [], 0.0, []
        try:
            for cid, idx in enumerate(ctx.client_test):
                if len(idx) == 0:
                    continue
                self._load_personal(cid)
                if ctx.model.task == "lm":  # a language model: its token statistics
                    tokens.append(token_stats(ctx, "test", idx))
                    continue
                pr, ls = predict(ctx, "test", idx)
                preds.append(pr)
                labels.append(ctx.labels(idx, "test"))
                loss += ls
        finally:
            ctx.model.load({n: v.to(ctx.device) for n, v in self.pl_init.items()})
        if tokens:
            out = lm_metrics(np.concatenate(tokens))
        else:
            out = metrics(np.concatenate(labels), np.concatenate(preds), loss)
        out["state_bytes"] = float(self.state_bytes())
        return out

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """The base class checkpoints every attribute; a checkpoint loads on CPU, masks live on the device."""
        super().load_state_dict(state)
        self.masks = {c: {n: m.to(self.ctx.device) for n, m in s.items()} for c, s in self.masks.items()}

    def round_info(self, rnd):
        """The curriculum's data share this round: mean over clients of its paced pool / its batches."""
        n = [(c, len(o)) for c, o in self.order.items() if len(o)] if self.p.curriculum else []
        return {"data_share": float(np.mean([len(self.pool(rnd, c)) / k for c, k in n])) if n else 1.0}
