"""Evaluation of the global model: accuracy, macro-F1 and loss, batched without autograd."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.metrics import f1_score

from fl_core.context import RunContext
from fl_core.method_view import MethodView, framework_context
from fl_core.metrics import ACCURACY, LOSS, MACRO_F1
from fl_core.precision import run_precision


def predict(
    ctx: RunContext | MethodView, split: str, idx: np.ndarray | None = None
) -> tuple[np.ndarray, float]:
    """(predicted labels, summed loss) on ``split`` rows ``idx`` (default: all); ``ctx`` may be a
    method's view."""
    preds, losses = predict_rows(framework_context(ctx), split, idx)
    return preds, float(losses.sum())


@torch.no_grad()  # not inference_mode: the prefix cache may fill here and feed autograd later
def predict_rows(ctx: RunContext, split: str, idx: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(predicted label, loss) per row of ``split`` rows ``idx`` (default: all), length-sorted batches."""
    data = getattr(ctx.splits, split)
    idx = np.arange(len(data)) if idx is None else idx
    perm = np.argsort(data.lengths[idx], kind="stable")
    order = idx[perm]
    ctx.model.hf.eval()
    preds = np.empty(len(order), dtype=np.int64)
    loss = np.empty(len(order), dtype=np.float64)
    bs = ctx.cfg.fl.eval_batch_size
    for s in range(0, len(order), bs):
        with run_precision(ctx):  # logits are cast to fp32 below
            logits, y = ctx.logits(order[s : s + bs], split, ctx.model.num_blocks)
        loss[s : s + bs] = F.cross_entropy(logits.float(), y, reduction="none").cpu().numpy()
        preds[s : s + bs] = logits.argmax(-1).cpu().numpy()
    out, out_loss = np.empty_like(preds), np.empty_like(loss)
    out[perm], out_loss[perm] = preds, loss
    return out, out_loss


def metrics(labels: np.ndarray, preds: np.ndarray, loss_sum: float) -> dict[str, float]:
    """The :data:`fl_core.metrics.EVAL` metrics of one prediction."""
    return {
        ACCURACY: float((preds == labels).mean()),
        MACRO_F1: float(f1_score(labels, preds, average="macro", zero_division=0)),
        LOSS: loss_sum / max(1, len(labels)),
    }


def evaluate_global(ctx: RunContext) -> tuple[dict[str, float], dict[str, float] | None]:
    """The global model on the global test set, and on the clients' own test splits pooled.

    The client splits are rows of the test set, so one pass over the test set serves both. A language
    model reports perplexity and next-token accuracy instead (:mod:`fl_core.evaluate_lm`).
    """
    if ctx.model.task == "lm":
        from fl_core.evaluate_lm import evaluate_lm

        return evaluate_lm(ctx)
    labels = ctx.splits.test.labels
    preds, losses = predict_rows(ctx, "test")
    overall = metrics(labels, preds, float(losses.sum()))
    if ctx.splits.val is not None:  # validation rows (carved from train) for model selection
        vp, vl = predict_rows(ctx, "val")
        overall.update(
            {f"val_{k}": v for k, v in metrics(ctx.splits.val.labels, vp, float(vl.sum())).items()}
        )
    idx = np.concatenate(ctx.client_test) if ctx.client_test else np.empty(0, dtype=np.int64)
    clients = metrics(labels[idx], preds[idx], float(losses[idx].sum())) if len(idx) else None
    return overall, clients
