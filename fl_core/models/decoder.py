"""The block view of a Llama-family decoder (Llama, Mistral, Qwen2/3; SmolLM2): ``embed_tokens`` +
ordered decoder ``layers`` + ``head`` (the final RMSNorm, then a fresh linear classifier or the LM head).

Classification reads the hidden state of the **last non-pad token**, found from the 0/1 token mask
(an explicit index, so right padding, what the token cache stores, and left padding give the same
logits; position ids are counted over real tokens only). Language modeling predicts every next
token; a tied LM head (SmolLM2) shares the embedding matrix, which stays in ``embeddings`` (frozen
unless ``fl.train_embeddings``), so the head that methods train is the final norm.
"""

from __future__ import annotations

import torch
from torch import nn
from transformers.masking_utils import create_causal_mask

from fl_core.models.blocks import ArchInfo, BlockModel

IGNORE = -100  # F.cross_entropy's ignore_index: padding targets of the LM loss


class DecoderClassifier(nn.Module):
    """A decoder body (``model``: e.g. ``LlamaModel``) and a fresh linear classifier (``score``)."""

    def __init__(self, body: nn.Module, num_labels: int) -> None:
        super().__init__()
        self.model = body
        self.config = body.config
        self.score = nn.Linear(body.config.hidden_size, num_labels)
        nn.init.normal_(self.score.weight, std=body.config.initializer_range)
        nn.init.zeros_(self.score.bias)


class DecoderBlockModel(BlockModel):
    """A view over :class:`DecoderClassifier` (``task="classify"``) or a ``*ForCausalLM`` (``"lm"``)."""

    #: the encoder names methods use for LoRA targets, in this family's module names
    LORA_ALIAS = {"query": "q_proj", "key": "k_proj", "value": "v_proj"}

    def __init__(self, hf: nn.Module, name: str, is_random: bool = False, task: str = "classify") -> None:
        if task not in ("classify", "lm"):
            raise ValueError(f"task {task!r}; allowed: classify, lm")
        self.hf, self.name, self.is_random, self.task = hf, name, is_random, task
        self.pooling = "last"
        body = hf.model
        self._base = body
        self.embeddings: nn.Module = body.embed_tokens
        self.blocks: nn.ModuleList = body.layers
        self.tied = task == "lm" and hf.lm_head.weight is body.embed_tokens.weight
        head = {"norm": body.norm}
        if task == "classify":
            head["classifier"] = hf.score
        elif not self.tied:
            head["lm_head"] = hf.lm_head
        self.head = nn.ModuleDict(head)
        self.lora_alias = dict(self.LORA_ALIAS)
        labels = hf.score.out_features if task == "classify" else hf.config.vocab_size
        self.arch = ArchInfo.of_config(hf.config, len(self.blocks), labels, "last", task)
        self.refresh()

    # -- forward -------------------------------------------------------------------------
    def block_mask(self, attention_mask: torch.Tensor, emb: torch.Tensor):
        """What every block takes: (causal + padding mask, rotary (cos, sin), position ids), positions
        counted over real tokens so left and right padding place them alike."""
        mask = attention_mask[:, : emb.shape[1]]
        pos = (mask.long().cumsum(-1) - 1).clamp_min(0)
        causal = create_causal_mask(
            config=self._base.config,
            inputs_embeds=emb,
            attention_mask=mask,
            cache=None,
            position_ids=pos,
            allow_is_causal_skip=False,  # always a tensor: vmap (FibecFed's Fisher pass) maps over it
        )
        return causal, self._base.rotary_emb(emb, position_ids=pos), pos

    def token_embeddings(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.embeddings(input_ids)

    def embed(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, inputs_embeds=None):
        h = self.embeddings(input_ids) if inputs_embeds is None else inputs_embeds
        return h, self.block_mask(attention_mask, h)

    def run_block(self, i: int, h: torch.Tensor, mask) -> torch.Tensor:
        causal, rope, pos = mask
        out = self.blocks[i](h, attention_mask=causal, position_embeddings=rope, position_ids=pos)
        return out[0] if isinstance(out, tuple) else out

    def summary(self, h: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """The state of each row's last non-pad token (its index read from the mask)."""
        mask = attention_mask[:, : h.shape[1]].long()
        last = (mask * torch.arange(1, h.shape[1] + 1, device=h.device)).argmax(-1)
        return h[torch.arange(h.shape[0], device=h.device), last]

    def pool(self, h: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.head["norm"](self.summary(h, attention_mask))

    def run_head(self, h: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Class logits [B, C] (``classify``) or next-token logits [B, s, V] (``lm``)."""
        if self.task == "classify":
            return self.head["classifier"](self.pool(h, attention_mask))
        return self.hf.lm_head(self.head["norm"](h))

    def loss_view(
        self, logits: torch.Tensor, ids: torch.Tensor, mask: torch.Tensor, y: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(logits, targets) for the loss: LM logits at positions < s-1 against the next token, padding
        targets set to :data:`IGNORE`; flattened to [B·(s-1), V] and [B·(s-1)]."""
        if self.task == "classify":
            return logits, y
        target = ids[:, 1:].masked_fill(mask[:, 1:] == 0, IGNORE)
        return logits[:, :-1].reshape(-1, logits.shape[-1]), target.reshape(-1)
