"""The decoder block view (tiny-llama, RANDOM WEIGHTS): names and order, the frozen prefix, last-token
pooling under either padding, the LM targets, LoRA on q_proj/v_proj, local Llama/Qwen dirs."""

from __future__ import annotations

import pytest
import torch
from transformers import Qwen2Config, Qwen2ForCausalLM

from fl_core.model_names import model_label
from fl_core.model_specs import model_family, num_blocks
from fl_core.models import EMB, HEAD, build_model, load_tokenizer
from fl_core.models.decoder import IGNORE


@pytest.fixture(scope="module")
def model():
    m = build_model("tiny-llama", 3, seed=0)
    m.hf.eval()
    return m


def _rows(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(100, 5000, (3, 10), generator=g)
    mask = torch.ones_like(ids)
    mask[1, 6:] = 0
    mask[2, 3:] = 0
    return ids, mask


def test_tiny_llama_is_labelled_random_and_has_the_decoder_view(model):
    assert model.is_random and "RANDOM" in model_label("tiny-llama")
    assert model_family("tiny-llama") == "decoder" and num_blocks("tiny-llama") == model.num_blocks == 4
    assert model.names_in(EMB) == ["model.embed_tokens.weight"]
    for i in range(model.num_blocks):
        assert {n.split(".")[2] for n in model.names_in(i)} == {str(i)}  # block i = model.layers.i
    assert set(model.names_in(HEAD)) == {"model.norm.weight", "score.weight", "score.bias"}
    assert load_tokenizer("tiny-llama").pad_token == load_tokenizer("tiny-llama").eos_token


def test_frozen_prefix_runs_without_autograd(model):
    seen: dict[int, bool] = {}
    hooks = [
        b.register_forward_hook(lambda mod, inp, out, i=i: seen.__setitem__(i, out.requires_grad))
        for i, b in enumerate(model.blocks)
    ]
    model.set_trainable(set(model.names_in(2)) | set(model.names_in(3)))
    try:
        model.forward(*_rows(), first_grad=2)
    finally:
        for h in hooks:
            h.remove()
        model.set_trainable(set())
    assert seen == {0: False, 1: False, 2: True, 3: True}


def test_last_token_pooling_gives_the_same_logits_under_left_and_right_padding(model):
    ids, mask = _rows()
    left, lmask = torch.full_like(ids, 2), torch.zeros_like(mask)
    for r in range(len(ids)):
        n = int(mask[r].sum())
        left[r, ids.shape[1] - n :], lmask[r, ids.shape[1] - n :] = ids[r, :n], 1
    with torch.no_grad():
        right_logits, left_logits = model.forward(ids, mask), model.forward(left, lmask)
        # the short row alone, unpadded: the same again
        alone = model.forward(ids[2:3, :3], mask[2:3, :3])
    torch.testing.assert_close(right_logits, left_logits, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(right_logits[2:3], alone, atol=1e-5, rtol=1e-5)
    with torch.no_grad():  # what the pooling must avoid: reading the last column (a pad)
        h = model._base(input_ids=ids, attention_mask=mask).last_hidden_state
        assert not torch.allclose(model.hf.score(h[:, -1]), right_logits, atol=1e-4)


def test_lm_view_predicts_next_tokens_and_ignores_padding():
    m = build_model("tiny-llama", 3, seed=0, task="lm")
    assert m.tied and m.names_in(HEAD) == ["model.norm.weight"]  # the tied LM head is the embedding
    ids, mask = _rows()
    with torch.no_grad():
        logits, target = m.loss_view(m.forward(ids, mask), ids, mask, torch.zeros(3))
        ref = m.hf(input_ids=ids, attention_mask=mask).logits
    assert logits.shape == (3 * 9, m.arch.vocab)
    assert target.view(3, 9)[1, 5:].eq(IGNORE).all() and target.view(3, 9)[1, :5].eq(ids[1, 1:6]).all()
    real = target != IGNORE
    torch.testing.assert_close(
        logits[real], ref[:, :-1].reshape(-1, m.arch.vocab)[real], atol=1e-5, rtol=1e-5
    )


def test_lora_adapts_q_and_v_projections():
    from fl_core.methods import make_method
    from fl_core.simulator import build_context
    from tests.conftest import tiny_cell

    cell = tiny_cell("lora").model_copy(update={"model": "tiny-llama"})
    ctx = build_context(cell)
    make_method("lora", {}, ctx).setup()
    adapted = {n.split(".lora_A")[0].rsplit(".", 1)[1] for n in ctx.model.params if ".lora_A." in n}
    assert adapted == {"q_proj", "v_proj"}


def test_a_local_qwen2_dir_maps_to_the_same_block_view(tmp_path):
    cfg = Qwen2Config(
        vocab_size=len(load_tokenizer("tiny-llama")),
        hidden_size=32,
        num_hidden_layers=3,
        num_attention_heads=4,
        num_key_value_heads=2,
        intermediate_size=64,
    )
    torch.manual_seed(0)
    Qwen2ForCausalLM(cfg).save_pretrained(tmp_path, safe_serialization=True)
    load_tokenizer("tiny-llama").save_pretrained(tmp_path)
    name = str(tmp_path)
    assert model_family(name) == "decoder" and num_blocks(name) == 3
    m = build_model(name, 4, seed=0)
    assert not m.is_random and m.num_blocks == 3 and m.arch.kv_heads == 2
    ids, mask = _rows()
    with torch.no_grad():
        assert m.forward(ids, mask).shape == (3, 4)
