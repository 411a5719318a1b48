"""The head reads the model's own pooling: the masked token mean for MiniLM-L6 (sentence-transformers),
HF's [CLS] pooler otherwise; and a cell's hash says which."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from fl_core.config import MethodSpec, RunConfig
from fl_core.model_specs import MODELS, model_pooling
from fl_core.models import HEAD, build_model


def test_minilm_entries_state_what_their_dir_declares(tmp_path):
    path = MODELS["minilm-l6"].path()
    with open(f"{path}/1_Pooling/config.json") as f:
        declared = json.load(f)
    assert declared["pooling_mode_mean_tokens"] and not declared["pooling_mode_cls_token"]
    assert {model_pooling(n) for n in ("minilm-l6", "minilm-l4", "minilm-l2")} == {"mean"}
    assert model_pooling("tiny-bert") == "cls"
    # a local dir: read from its files
    local = tmp_path / "m"
    local.mkdir()
    shutil.copy(f"{path}/config.json", local / "config.json")
    assert model_pooling(str(local)) == "cls"  # a plain HF classifier dir
    shutil.copytree(f"{path}/1_Pooling", local / "1_Pooling")
    assert model_pooling(str(local)) == "mean"


def _batch(pad: int):
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(1000, 2000, (3, 10), generator=g)
    mask = torch.ones_like(ids)
    mask[1, 6:] = 0  # a short row
    ids = torch.cat([ids, torch.zeros(3, pad, dtype=ids.dtype)], 1)  # trailing [PAD] columns
    return ids, torch.cat([mask, torch.zeros(3, pad, dtype=mask.dtype)], 1)


@pytest.mark.parametrize("pooling", ["mean", "cls"])
def test_logits_do_not_depend_on_padding(pooling):
    m = build_model("tiny-bert", 3, seed=0, pooling=pooling)
    m.hf.eval()
    with torch.no_grad():
        a, b = (m.forward(*_batch(pad)) for pad in (0, 7))
    torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


def test_mean_head_is_the_classifier_on_the_masked_token_mean():
    m = build_model("tiny-bert", 3, seed=0, pooling="mean")
    m.hf.eval()
    assert set(m.names_in(HEAD)) == {"classifier.weight", "classifier.bias"}  # no [CLS] pooler
    ids, mask = _batch(4)
    with torch.no_grad():
        h = m.hf.bert(input_ids=ids, attention_mask=mask).last_hidden_state
        w = mask[..., None].float()
        expected = m.hf.classifier((h * w).sum(1) / w.sum(1))
        torch.testing.assert_close(m.forward(ids, mask), expected, atol=1e-5, rtol=1e-5)
        naive = m.hf.classifier(h.mean(1))  # padding counted: what the mask must prevent
        assert not torch.allclose(m.forward(ids, mask), naive, atol=1e-4)


def test_minilm_builds_mean_pooled_and_its_cells_hash_say_so(monkeypatch):
    m = build_model("minilm-l6", 5, seed=0)
    assert m.pooling == "mean" and m.arch.pooling == "mean"
    assert not any("pooler" in n for n in m.params)
    cell = RunConfig(dataset="bbc_news", alpha=1.0, method=MethodSpec(name="full"), seed=0)
    tiny = cell.model_copy(update={"model": "tiny-bert"})
    now = cell.hash(), tiny.hash()
    monkeypatch.setattr("fl_core.config.model_pooling", lambda name: "cls")  # before pooling was honoured
    assert now[0] != cell.hash()  # MiniLM cells made under cls pooling are not taken as done
    assert now[1] == tiny.hash()  # the test model's stores stay valid
