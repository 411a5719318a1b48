"""Evaluation of a language model: held-out perplexity and next-token accuracy, batched without
autograd. Perplexity is ``exp`` of the mean next-token negative log-likelihood over every predicted
(non-pad) token of the rows, pooled over rows (not a mean of per-row perplexities)."""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from fl_core.context import RunContext
from fl_core.method_view import MethodView, framework_context
from fl_core.metrics import LOSS, PERPLEXITY, TOKEN_ACCURACY
from fl_core.models.decoder import IGNORE
from fl_core.precision import run_precision


@torch.no_grad()  # not inference_mode: the prefix cache may fill here and feed autograd later
def token_stats(ctx: RunContext | MethodView, split: str, idx: np.ndarray | None = None) -> np.ndarray:
    """Per row of ``split`` rows ``idx`` (default: all): [summed NLL, predicted tokens, correct];
    ``ctx`` may be a method's view."""
    ctx = framework_context(ctx)
    data = getattr(ctx.splits, split)
    idx = np.arange(len(data)) if idx is None else idx
    order = idx[np.argsort(data.lengths[idx], kind="stable")]
    out = np.zeros((len(data), 3), dtype=np.float64)
    ctx.model.hf.eval()
    bs = ctx.cfg.fl.eval_batch_size
    for s in range(0, len(order), bs):
        rows = order[s : s + bs]
        with run_precision(ctx):
            logits, target = ctx.logits(rows, split, ctx.model.num_blocks)
        logits, target = logits.float().view(len(rows), -1, logits.shape[-1]), target.view(len(rows), -1)
        nll = F.cross_entropy(logits.transpose(1, 2), target, ignore_index=IGNORE, reduction="none")
        real = target != IGNORE
        hit = (logits.argmax(-1) == target) & real
        stats = torch.stack([nll.sum(1), real.sum(1), hit.sum(1)], 1).double().cpu().numpy()
        out[rows] = stats
    return out[idx]


def lm_metrics(stats: np.ndarray) -> dict[str, float]:
    """The :data:`fl_core.metrics.EVAL` LM metrics of summed rows of :func:`token_stats`."""
    nll, tokens, correct = stats.sum(0) if len(stats) else (0.0, 0.0, 0.0)
    mean = nll / max(tokens, 1.0)
    mean = float(mean)
    return {LOSS: mean, PERPLEXITY: math.exp(mean), TOKEN_ACCURACY: float(correct / max(tokens, 1.0))}


def evaluate_lm(ctx: RunContext) -> tuple[dict[str, float], dict[str, float] | None]:
    """The global model on the global test rows, and on the clients' own test rows pooled (each
    client's topic mix); ``client_perplexity_*``: spread of the per-client perplexities."""
    stats = token_stats(ctx, "test")
    overall = lm_metrics(stats)
    if ctx.splits.val is not None:
        overall.update({f"val_{k}": v for k, v in lm_metrics(token_stats(ctx, "val")).items()})
    if not ctx.client_test or not sum(len(c) for c in ctx.client_test):
        return overall, None
    clients = lm_metrics(stats[np.concatenate(ctx.client_test)])
    per = [lm_metrics(stats[c])[PERPLEXITY] for c in ctx.client_test if len(c)]
    overall.update(client_perplexity_mean=float(np.mean(per)), client_perplexity_max=float(np.max(per)))
    return overall, clients
