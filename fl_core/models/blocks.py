"""The model as the rest of the code sees it: ``embeddings``, an ordered list of ``blocks``, ``head``.

Methods speak of block indices; this view maps them to parameters and runs the forward pass with
the frozen prefix under ``torch.no_grad`` (no activations stored, no backward through it).
Frozen-prefix blocks run in eval mode (no dropout), the same for every method.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import nn

EMB = "embeddings"
HEAD = "head"


@dataclass(frozen=True)
class ArchInfo:
    """What the analytic cost model needs to know about an architecture."""

    num_blocks: int
    hidden: int
    intermediate: int
    heads: int
    vocab: int
    num_labels: int
    pooling: str = "cls"  # "cls": HF's pooler (dense + tanh) on the first token; "mean": masked token mean
    family: str = "bert"  # "bert" (encoder) or "llama" (decoder: GQA, SwiGLU, RMSNorm)
    kv_heads: int = 0  # key/value heads (GQA; llama only)
    head_dim: int = 0  # per-head width (llama only)
    task: str = "classify"  # "classify" or "lm" (next-token prediction, ``num_labels`` = vocab)
    tied: bool = False  # the LM head shares the embedding matrix

    @classmethod
    def of_config(
        cls, cfg, num_blocks: int, num_labels: int, pooling: str, task: str = "classify"
    ) -> ArchInfo:
        """From a HF config (attributes or a ``config.json`` dict): a Llama-family decoder's GQA and
        tied head where ``pooling`` is ``"last"``, else a BERT encoder's (an LM's outputs: the vocab)."""
        get = cfg.get if isinstance(cfg, dict) else lambda k, d=None: getattr(cfg, k, d)
        heads, vocab = int(get("num_attention_heads")), int(get("vocab_size"))
        base = (num_blocks, int(get("hidden_size")), int(get("intermediate_size")), heads, vocab)
        if pooling != "last":
            return cls(*base, num_labels, pooling)
        return cls(
            *base,
            vocab if task == "lm" else num_labels,
            "last",
            family="llama",
            kv_heads=int(get("num_key_value_heads") or heads),
            head_dim=int(get("head_dim") or get("hidden_size") // heads),
            task=task,
            tied=bool(get("tie_word_embeddings", False)),
        )


class BlockModel:
    """A thin view over a HF encoder classifier (BERT family). Not a copy: it shares the modules."""

    def __init__(self, hf: nn.Module, name: str, is_random: bool = False, pooling: str = "cls") -> None:
        self.hf = hf
        self.name = name
        self.is_random = is_random
        self.pooling = pooling
        self.task = "classify"
        self.lora_alias: dict[str, str] = {}  # LoRA target names → this family's module names
        base = hf.bert
        self.embeddings: nn.Module = base.embeddings
        self.blocks: nn.ModuleList = base.encoder.layer
        if pooling == "mean":  # the classifier reads the token mean: HF's [CLS] pooler is not in the model
            base.pooler = None
            self.head = nn.ModuleDict({"classifier": hf.classifier})
        elif pooling == "cls":
            self.head = nn.ModuleDict({"pooler": base.pooler, "classifier": hf.classifier})
        else:
            raise ValueError(f"pooling {pooling!r}; allowed: cls, mean")
        self._dropout = hf.dropout
        self._base = base
        self.arch = ArchInfo.of_config(hf.config, len(self.blocks), hf.config.num_labels, pooling)
        self.refresh()

    # -- parameters by group -------------------------------------------------------------
    def refresh(self) -> None:
        """Rebuild the name → group map (call after adding adapters, e.g. LoRA)."""
        owner: dict[int, str | int] = {}
        for p in self.embeddings.parameters():
            owner[id(p)] = EMB
        for i, b in enumerate(self.blocks):
            for p in b.parameters():
                owner[id(p)] = i
        for p in self.head.parameters():
            owner[id(p)] = HEAD
        self.params: dict[str, nn.Parameter] = dict(self.hf.named_parameters())
        self.group_of: dict[str, str | int] = {
            n: owner[id(p)] for n, p in self.params.items() if id(p) in owner
        }
        missing = [n for n, p in self.params.items() if id(p) not in owner]
        if missing:
            raise RuntimeError(f"parameters outside embeddings/blocks/head: {missing[:5]}")

    @property
    def num_blocks(self) -> int:
        return len(self.blocks)

    def names_in(self, group: str | int) -> list[str]:
        return [n for n, g in self.group_of.items() if g == group]

    def numel(self, names: Iterator[str] | list[str]) -> int:
        return sum(self.params[n].numel() for n in names)

    def state(self, names: list[str]) -> dict[str, torch.Tensor]:
        return {n: self.params[n].detach().clone() for n in names}

    @torch.no_grad()
    def load(self, values: dict[str, torch.Tensor]) -> None:
        for n, v in values.items():
            self.params[n].copy_(v)

    def set_trainable(self, names: set[str]) -> None:
        for n, p in self.params.items():
            p.requires_grad_(n in names)

    def to(self, device: torch.device) -> BlockModel:
        self.hf.to(device)
        return self

    @property
    def device(self) -> torch.device:
        return next(self.hf.parameters()).device

    # -- forward -------------------------------------------------------------------------
    def block_mask(self, attention_mask: torch.Tensor, emb: torch.Tensor):
        """The mask every block takes, built from the 0/1 token mask (HF's own construction)."""
        return self._base._create_attention_masks(attention_mask, None, emb, None, None)[0]

    def token_embeddings(self, input_ids: torch.Tensor) -> torch.Tensor:
        """The token embedding lookup alone (what ``embed`` takes as ``inputs_embeds``)."""
        return self.embeddings.word_embeddings(input_ids)

    def embed(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, inputs_embeds=None):
        if inputs_embeds is None:
            h = self.embeddings(input_ids=input_ids, token_type_ids=torch.zeros_like(input_ids))
        else:
            h = self.embeddings(inputs_embeds=inputs_embeds, token_type_ids=torch.zeros_like(input_ids))
        return h, self.block_mask(attention_mask, h)

    def run_block(self, i: int, h: torch.Tensor, mask) -> torch.Tensor:
        out = self.blocks[i](h, attention_mask=mask)
        return out[0] if isinstance(out, tuple) else out

    def summary(self, h: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """The pooled position of hidden states ``h`` [B, s, d] (0/1 token mask [B, s]): the first
        token's state (``cls``) or the masked token mean (``mean``, sentence-transformers' pooling)."""
        if self.pooling == "cls":
            return h[:, 0]
        m = attention_mask[:, : h.shape[1], None].to(h.dtype)
        return (h * m).sum(1) / m.sum(1).clamp_min(1.0)

    def pool(self, h: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """The classifier's input: HF's pooler (dense + tanh on [CLS]) or the masked token mean."""
        if self.pooling == "cls":
            return self.head["pooler"](h)
        return self.summary(h, attention_mask)

    def run_head(self, h: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.head["classifier"](self._dropout(self.pool(h, attention_mask)))

    def loss_view(
        self, logits: torch.Tensor, ids: torch.Tensor, mask: torch.Tensor, y: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(logits, targets) the loss compares (a classifier: as they are; a decoder LM: next tokens)."""
        return logits, y

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, first_grad: int = 0
    ) -> torch.Tensor:
        """Logits. Embeddings and blocks ``< first_grad`` run under no_grad in eval mode."""
        with self._frozen([self.embeddings] if first_grad > 0 else []):
            h, mask = self.embed(input_ids, attention_mask)
        return self.forward_from(h, mask, 0, first_grad, attention_mask)

    def forward_from(
        self, h: torch.Tensor, mask, start: int, first_grad: int, attention_mask: torch.Tensor
    ) -> torch.Tensor:
        """Logits from the hidden state ``h`` entering block ``start`` (``mask``: the block-level mask,
        ``attention_mask``: the 0/1 token mask, for the head's pooling)."""
        with self._frozen(list(self.blocks)[start:first_grad]):
            for i in range(start, min(first_grad, self.num_blocks)):
                h = self.run_block(i, h, mask)
        for i in range(max(start, first_grad), self.num_blocks):
            h = self.run_block(i, h, mask)
        return self.run_head(h, attention_mask)

    @contextlib.contextmanager
    def _frozen(self, modules: list[nn.Module]):
        """Frozen modules: eval mode (no dropout) and no autograd; restored afterwards."""
        modes = [m.training for m in modules]
        for m in modules:
            m.eval()
        try:
            with torch.set_grad_enabled(torch.is_grad_enabled() and not modules):
                yield
        finally:
            for m, t in zip(modules, modes, strict=True):
                m.train(t)

    def hidden_states(self, input_ids, attention_mask, inputs_embeds=None) -> list[torch.Tensor]:
        """Per-block outputs (after each block), for methods that probe the representation."""
        h, mask = self.embed(input_ids, attention_mask, inputs_embeds)
        out = []
        for i in range(self.num_blocks):
            h = self.run_block(i, h, mask)
            out.append(h)
        return out
