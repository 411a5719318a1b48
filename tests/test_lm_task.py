"""The language-modeling task (bbc_news_lm) on tiny-llama (RANDOM WEIGHTS): perplexity against a hand
computation, a federated cell end to end, and the metric's direction (lower is better)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from fl_core.evaluate_lm import lm_metrics, token_stats
from fl_core.metrics import PRIMARY, SUMMARY, higher_is_better
from fl_core.simulator import build_context, run_cell
from fl_core.validate import ConfigError, check_names
from tests.conftest import TINY_FL, tiny_cell


def _lm_cell(method: str = "full", **params):
    return tiny_cell(method, **params).model_copy(
        update={
            "model": "tiny-llama",
            "dataset": "bbc_news_lm",
            "fl": TINY_FL.model_copy(update={"rounds": 1}),
        }
    )


def test_perplexity_matches_a_hand_computation():
    ctx = build_context(_lm_cell())
    rows = np.arange(6)
    got = lm_metrics(token_stats(ctx, "test", rows))
    data = ctx.splits.test
    nll, n, hit = 0.0, 0, 0
    ctx.model.hf.eval()
    with torch.no_grad():
        for r in rows:  # one unpadded row at a time, through HF's own causal LM forward
            ids = torch.from_numpy(data.ids[r, : data.lengths[r]].astype(np.int64))[None]
            logp = torch.log_softmax(ctx.model.hf(input_ids=ids).logits[0, :-1].double(), -1)
            nxt = ids[0, 1:]
            nll -= float(logp[torch.arange(len(nxt)), nxt].sum())
            hit += int((logp.argmax(-1) == nxt).sum())
            n += len(nxt)
    assert got["perplexity"] == pytest.approx(math.exp(nll / n), rel=1e-5)
    assert got["loss"] == pytest.approx(nll / n, rel=1e-5) and got["token_accuracy"] == pytest.approx(hit / n)
    assert 1 < got["perplexity"] < 10 * ctx.model.arch.vocab  # a random model: near the vocabulary size


def test_lm_cell_reports_perplexity_and_lower_is_better():
    res = run_cell(_lm_cell("top_k", k=0.5), progress=False)
    last = res.rounds[-1]
    assert res.status == "ok" and "accuracy" not in last
    assert {"perplexity", "token_accuracy", "personal_perplexity", "client_perplexity_mean"} <= set(last)
    assert last["perplexity"] == pytest.approx(math.exp(last["loss"]))
    assert PRIMARY["lm"] == "final_perplexity" and not higher_is_better("final_perplexity")
    assert SUMMARY["final_token_accuracy"].higher


def test_an_lm_dataset_needs_a_decoder():
    with pytest.raises(ConfigError, match="language-modeling"):
        check_names("tiny-bert", ["bbc_news_lm"], [], "t.yaml")
