"""A run's state as the simulator keeps it: the model, the clients' data, seeded RNG streams, costs. A
method never gets it: it sees a read-only :class:`fl_core.method_view.MethodView` of it."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from fl_core.config import RunConfig
from fl_core.cost_record import CostLog
from fl_core.data import Splits
from fl_core.flops import step_flops
from fl_core.models import EMB, HEAD, BlockModel
from fl_core.plan import TrainPlan
from fl_core.rng import seeded_rng, torch_seed
from fl_core.visits import expected_visits


class PrefixCache:
    """Output of the never-trained bottom blocks, computed on a row's first use (in fixed chunks) and
    kept, in the same frozen mode (eval, no_grad) the simulator runs them in: a speed-up with the same
    numbers up to float rounding. FLOPs are still counted as if computed (a real client runs them)."""

    def __init__(self, ctx: RunContext, start: int) -> None:
        self.ctx, self.start = ctx, start
        self.store: dict[str, torch.Tensor] = {}
        self.done: dict[str, np.ndarray] = {}
        self.visits: dict[str, float] = {}

    CHUNK = 32  # rows are computed in fixed chunks, so a row's value never depends on call history
    MIN_VISITS = 1.0  # a split is cached only if its rows are expected to be read more often than this

    def worth(self, split: str) -> bool:
        """Chunks compute whole 32-row blocks: a split read < MIN_VISITS times per row would pay more."""
        if split not in self.visits:
            self.visits[split] = expected_visits(self.ctx, split)
        return self.visits[split] > self.MIN_VISITS

    @torch.no_grad()  # not inference_mode: the cached tensors feed autograd later
    def hidden(self, split: str, idx: np.ndarray, n: int) -> torch.Tensor:
        data = getattr(self.ctx.splits, split)
        if split not in self.store:
            self.store[split] = torch.zeros(len(data), data.ids.shape[1], self.ctx.model.arch.hidden)
            self.done[split] = np.zeros(len(data), dtype=bool)
        model = self.ctx.model
        for c in np.unique(idx[~self.done[split][idx]] // self.CHUNK):
            rows = np.arange(c * self.CHUNK, min((c + 1) * self.CHUNK, len(data)))
            ids, mask, _ = self.ctx.tensors(rows, split)
            mode = model.hf.training
            model.hf.eval()
            h, ext = model.embed(ids, mask)
            for i in range(self.start):
                h = model.run_block(i, h, ext)
            model.hf.train(mode)
            self.store[split][torch.from_numpy(rows), : h.shape[1]] = h.float().cpu()
            self.done[split][rows] = True
        return self.store[split][torch.from_numpy(idx), :n]


@dataclass
class RunContext:
    cfg: RunConfig
    model: BlockModel
    splits: Splits
    clients: list[np.ndarray]  # train indices per client
    device: torch.device
    costs: CostLog = field(default_factory=CostLog)
    global_values: dict[str, torch.Tensor] = field(default_factory=dict)  # this round's snapshot
    touched: set[str] = field(default_factory=set)  # params changed since the pretrained start
    client_test: list[np.ndarray] = field(default_factory=list)  # test indices per client, its label mix
    prefix_cache: PrefixCache | None = None
    precision: str | None = None  # what fl.precision resolved to here (fl_core.precision), and why:
    precision_reason: str = ""
    shares: dict[tuple[str, ...], list[float]] = field(default_factory=dict)  # trained_share per plan

    # -- randomness: every stream derives from the cell seed and a key, not from call order ---
    def rng(self, *key) -> np.random.Generator:
        return seeded_rng(self.cfg.seed, *key)

    def torch_seed(self, *key) -> int:
        return torch_seed(self.cfg.seed, *key)

    # -- data ------------------------------------------------------------------------------
    def num_samples(self, cid: int) -> int:
        return len(self.clients[cid])

    def client_batches(
        self, cid: int, rnd: int, epoch: int = 0, batch_size: int | None = None
    ) -> list[np.ndarray]:
        """Seeded shuffle of client ``cid``'s indices for (round, epoch), cut into batches."""
        bs = batch_size or self.cfg.fl.batch_size
        idx = self.clients[cid]
        rng = self.rng("data", rnd, cid, epoch)
        perm = idx[rng.permutation(len(idx))]
        k = self.cfg.fl.length_buckets
        if k <= 1:
            return [perm[i : i + bs] for i in range(0, len(perm), bs)]
        # length bucketing (as HF's LengthGroupedSampler): sort each run of k*bs shuffled rows by
        # length, batch, then shuffle the batches; rows keep a random batch, padding shrinks. As in
        # a plain shuffle, the last len % bs shuffled rows form the one short batch, at the end.
        lengths = self.splits.train.lengths
        cut = len(perm) - len(perm) % bs
        batches = []
        for m in range(0, cut, k * bs):
            mega = perm[m : min(m + k * bs, cut)]
            mega = mega[np.argsort(lengths[mega], kind="stable")]
            batches += [mega[i : i + bs] for i in range(0, len(mega), bs)]
        return [batches[i] for i in rng.permutation(len(batches))] + ([perm[cut:]] if cut < len(perm) else [])

    def tensors(
        self, idx: np.ndarray, split: str = "train"
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(input_ids, attention_mask, labels) on the device, padded to the batch's longest row."""
        data = getattr(self.splits, split)
        n = int(data.lengths[idx].max())
        ids = torch.from_numpy(data.ids[idx, :n].astype(np.int64))
        mask = (torch.arange(n)[None, :] < torch.from_numpy(data.lengths[idx])[:, None]).long()
        y = torch.from_numpy(data.labels[idx])
        return ids.to(self.device), mask.to(self.device), y.to(self.device)

    def logits(self, idx: np.ndarray, split: str, first_grad: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(logits, targets) for rows ``idx`` (:meth:`BlockModel.loss_view`); starts from the prefix cache
        when it covers ``first_grad``."""
        ids, mask, y = self.tensors(idx, split)
        cache = self.prefix_cache
        if cache is not None and first_grad >= cache.start and cache.worth(split):
            h = cache.hidden(split, idx, ids.shape[1]).to(self.device)
            out = self.model.forward_from(h, self.model.block_mask(mask, h), cache.start, first_grad, mask)
        else:
            out = self.model.forward(ids, mask, first_grad)
        return self.model.loss_view(out, ids, mask, y)  # an LM: next-token logits and targets

    def enable_prefix_cache(self, start: int) -> None:
        """Blocks ``< start`` are never trained by anyone in this run: compute their output once."""
        if start > 0:
            self.prefix_cache = PrefixCache(self, start)

    # -- what a plan trains ----------------------------------------------------------------
    def trainable_names(self, plan: TrainPlan) -> list[str]:
        out = []
        for n, g in self.model.group_of.items():
            if g == HEAD:
                keep = plan.head
            elif g == EMB:
                keep = self.cfg.fl.train_embeddings
            else:
                keep = g in plan.blocks and (plan.only is None or plan.only in n)
            if keep:
                out.append(n)
        return out

    def first_grad(self, plan: TrainPlan) -> int:
        """Lowest block that backward must reach (blocks below run under no_grad)."""
        if self.cfg.fl.train_embeddings:
            return 0
        return min(plan.blocks, default=self.model.num_blocks)

    def trained_share(self, names: list[str]) -> list[float]:
        """Share of each block's (non-LoRA) parameters in ``names``; computed once per name set."""
        key = tuple(names)
        if key not in self.shares:
            self.shares[key] = self._trained_share(names)
        return self.shares[key]

    def _trained_share(self, names: list[str]) -> list[float]:
        share = []
        for i in range(self.model.num_blocks):
            block = self.model.names_in(i)
            total = self.model.numel(n for n in block if "lora_" not in n) or 1
            share.append(min(1.0, self.model.numel(n for n in names if self.model.group_of[n] == i) / total))
        return share

    def flops(
        self, idx: np.ndarray, plan: TrainPlan | None, names: list[str] | None = None
    ) -> tuple[float, float]:
        """Analytic (forward, backward) FLOPs of one step on batch ``idx`` (plan None: forward only)."""
        seq = int(self.splits.train.lengths[idx].max())
        if plan is None:
            fwd, _ = step_flops(
                self.model.arch, len(idx), seq, self.model.num_blocks, [0.0] * self.model.num_blocks
            )
            return fwd, 0.0
        names = names if names is not None else self.trainable_names(plan)
        return step_flops(self.model.arch, len(idx), seq, self.first_grad(plan), self.trained_share(names))

    def bytes_down(self) -> int:
        """A client must receive every parameter that differs from the pretrained weights it has."""
        return 4 * self.model.numel(self.touched)
