"""Evaluation of the global model: accuracy, macro-F1 and loss, batched without autograd."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.metrics import f1_score

from fl_core.context import RunContext


@torch.inference_mode()
def predict(ctx: RunContext, split: str, idx: np.ndarray | None = None) -> tuple[np.ndarray, float]:
    """(predicted labels, summed loss) on ``split`` rows ``idx`` (default: all), length-sorted batches."""
    data = getattr(ctx.splits, split)
    idx = np.arange(len(data)) if idx is None else idx
    perm = np.argsort(data.lengths[idx], kind="stable")
    order = idx[perm]
    ctx.model.hf.eval()
    preds = np.empty(len(order), dtype=np.int64)
    loss = 0.0
    bs = ctx.cfg.fl.eval_batch_size
    for s in range(0, len(order), bs):
        ids, mask, y = ctx.tensors(order[s : s + bs], split)
        logits = ctx.model.forward(ids, mask, ctx.model.num_blocks)
        loss += float(F.cross_entropy(logits.float(), y, reduction="sum"))
        preds[s : s + bs] = logits.argmax(-1).cpu().numpy()
    out = np.empty_like(preds)
    out[perm] = preds
    return out, loss


def metrics(labels: np.ndarray, preds: np.ndarray, loss_sum: float) -> dict[str, float]:
    return {
        "accuracy": float((preds == labels).mean()),
        "macro_f1": float(f1_score(labels, preds, average="macro", zero_division=0)),
        "loss": loss_sum / max(1, len(labels)),
    }


def evaluate(ctx: RunContext, split: str = "test", idx: np.ndarray | None = None) -> dict[str, float]:
    data = getattr(ctx.splits, split)
    idx = np.arange(len(data)) if idx is None else idx
    preds, loss = predict(ctx, split, idx)
    return metrics(data.labels[idx], preds, loss)
