"""The analytic cost model against the real model: parameter counts, the activations autograd
stores (read with saved-tensor hooks), measured peak memory, FLOPs, budgets."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import itertools  # noqa: E402

import pytest  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from fl_core.budget_model import (  # noqa: E402
    Budget,
    DoesNotFit,
    arch_of,
    client_step_memory,
    full_cost,
    inject_lora,
    largest_rank,
    largest_suffix,
    largest_window,
    lora_params_per_block,
    measure_step,
    param_counts,
    step_cost,
)
from fl_core.config import DataConfig, FLConfig, MethodSpec, RunConfig  # noqa: E402
from fl_core.errors import CellNotRunnable  # noqa: E402
from fl_core.flops import block_forward_flops, head_forward_flops  # noqa: E402
from fl_core.models import EMB, HEAD, build_model  # noqa: E402

B, S, C = 4, 24, 4  # S differs from the head dim (16) so no two activation shapes coincide


def _model(r: int | None = None, dropout: float = 0.0, pooling: str = "cls"):
    m = build_model("tiny-bert", C, seed=0, pooling=pooling)
    if r is not None:
        inject_lora(m, r, dropout=dropout)
    return m


def _saved_bytes(m, blocks: set[int], lora: bool = False) -> int:
    """Bytes of the distinct storages autograd saves for backward in one forward (params excluded)."""
    L = m.num_blocks
    names = set(m.names_in(HEAD))
    if lora:
        names |= {n for n in m.params if "lora_" in n}
        first = 0
    else:
        names |= {n for n, g in m.group_of.items() if g in blocks}
        first = min(blocks, default=L)
    m.set_trainable(names)
    m.hf.train()
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(1000, 2000, (B, S), generator=g)
    y = torch.randint(0, C, (B,), generator=g)
    params = {p.untyped_storage().data_ptr() for p in m.hf.parameters()}
    seen: dict[int, int] = {}

    def pack(x):
        st = x.untyped_storage()
        if st.data_ptr() not in params:
            seen[st.data_ptr()] = st.nbytes()
        return x

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda x: x):
        loss = F.cross_entropy(m.forward(ids, torch.ones_like(ids), first), y)
    del loss
    m.set_trainable(set())
    return sum(seen.values())


@pytest.fixture(scope="module")
def arch():
    return build_model("tiny-bert", C).arch


def test_param_counts_match_the_model(arch):
    m = _model()
    pc = param_counts(arch)
    assert pc.embeddings == m.numel(m.names_in(EMB))
    assert pc.head == m.numel(m.names_in(HEAD))
    assert all(pc.block == m.numel(m.names_in(i)) for i in range(m.num_blocks))
    assert arch_of("tiny-bert", C) == arch
    lm = _model(r=4)
    lora = [n for n in lm.params if "lora_" in n]
    assert lm.numel(lora) == arch.num_blocks * lora_params_per_block(arch, 4)


@pytest.mark.parametrize("blocks", [set(), {1}, {0, 1}, {0}])  # {0}: block 1 is passed through
def test_activation_formula_is_exact_for_layer_training(arch, blocks):
    m = _model()
    L = arch.num_blocks
    cost = step_cost(arch, B, S, blocks=blocks)
    assert _saved_bytes(m, blocks) == cost.activations
    if blocks == set(range(L - len(blocks), L)):
        assert step_cost(arch, B, S, t=len(blocks)) == cost


@pytest.mark.parametrize("blocks", [set(), {1}, {0, 1}, {0}])
def test_activation_formula_is_exact_for_mean_pooling(blocks):
    """The mean-pooled head (MiniLM-L6's) stores what the formula says, with and without a body
    gradient, for layer training and LoRA; its parameters are the classifier's only."""
    m = _model(pooling="mean")
    arch = m.arch
    assert arch.pooling == "mean" and param_counts(arch).head == m.numel(m.names_in(HEAD))
    assert _saved_bytes(m, blocks) == step_cost(arch, B, S, blocks=blocks).activations
    assert _saved_bytes(m, blocks) < _saved_bytes(_model(), blocks)  # no [CLS] pooler keeping h alive
    first = min(blocks, default=m.num_blocks)
    got = client_step_memory(m, _trained(m, blocks), first, B, S, "adamw")
    assert got == (step_cost(arch, B, S, blocks=blocks) if blocks else step_cost(arch, B, S, t=0)).memory
    lm = _model(r=4, dropout=0.1, pooling="mean")
    assert _saved_bytes(lm, set(), lora=True) == step_cost(arch, B, S, r=4, lora_dropout=0.1).activations


def _trained(m, blocks: set[int], lora: bool = False) -> list[str]:
    return [
        n for n, g in m.group_of.items() if g == HEAD or (lora and "lora_" in n) or (not lora and g in blocks)
    ]


@pytest.mark.parametrize("blocks", [set(), {1}, {0, 1}, {0}])
def test_live_model_memory_equals_the_configuration_cost(arch, blocks):
    """What a running cell records per client step equals the cost of the same configuration."""
    m = _model()
    first = min(blocks, default=m.num_blocks)
    got = client_step_memory(m, _trained(m, blocks), first, B, S, "adamw")
    expected = step_cost(arch, B, S, blocks=blocks) if blocks else step_cost(arch, B, S, t=0)
    assert got == expected.memory
    assert client_step_memory(m, _trained(m, blocks), first, B, S, "sgd") < got  # no Adam moments


@pytest.mark.parametrize("dropout", [0.0, 0.1])
def test_live_lora_model_memory_equals_the_configuration_cost(arch, dropout):
    m = _model(r=4, dropout=dropout)
    got = client_step_memory(m, _trained(m, set(), lora=True), 0, B, S)
    assert got == step_cost(arch, B, S, r=4, lora_dropout=dropout).memory


def test_cells_record_client_peak_memory():
    from fl_core.simulator import run_cell

    from .conftest import tiny_cell

    costs = {m: run_cell(tiny_cell(m, **p), progress=False).costs for m, p in [("head", {}), ("full", {})]}
    peak = {m: max(r["peak_memory_bytes"] for r in c if r["kind"] == "train") for m, c in costs.items()}
    assert 0 < peak["head"] < peak["full"]


@pytest.mark.parametrize("dropout", [0.0, 0.1])
def test_activation_formula_is_exact_for_lora(arch, dropout):
    saved = _saved_bytes(_model(r=8, dropout=dropout), set(), lora=True)
    analytic = step_cost(arch, B, S, r=8, lora_dropout=dropout).activations
    assert saved == analytic
    # LoRA stores activations of every block: more than training only the top block
    assert analytic > step_cost(arch, B, S, t=1).activations


def test_memory_flops_upload_components(arch):
    L, pc = arch.num_blocks, param_counts(arch)
    full = full_cost(arch, B, S)
    assert full.trained_params == L * pc.block + pc.head and full.upload == 4 * full.trained_params
    assert full.weights == 4 * pc.total(L) and full.grads == 4 * full.trained_params
    assert full.optimizer == 2 * full.grads
    assert step_cost(arch, B, S, t=L, optimizer="sgd").optimizer == 0
    assert step_cost(arch, B, S, t=L, optimizer="sgd", momentum=0.9).optimizer == full.grads
    blk, head = block_forward_flops(arch, B, S), head_forward_flops(arch, B)
    assert full.flops == pytest.approx(3 * L * blk + 3 * head)
    assert step_cost(arch, B, S, t=0).flops == pytest.approx(L * blk + 3 * head)
    lora = step_cost(arch, B, S, r=8)
    assert lora.flops > step_cost(arch, B, S, t=L - 1).flops  # backward reaches block 0
    assert lora.upload < step_cost(arch, B, S, t=1).upload
    costs = [step_cost(arch, B, S, t=t) for t in range(L + 1)]
    for a, b in itertools.pairwise(costs):
        assert a.memory < b.memory and a.flops < b.flops and a.upload < b.upload


def test_measured_peak_memory_ranks_configurations_like_the_model():
    """Analytic vs measured (torch profiler memory events) on tiny-bert, t = 0..L and LoRA."""
    b, s = 8, 64  # activations comparable to the weights, so the configurations differ
    arch = arch_of("tiny-bert", C)
    configs = [{"t": t} for t in range(arch.num_blocks + 1)] + [{"r": 8}]
    analytic = [step_cost(arch, b, s, **c).memory for c in configs]
    measured = [measure_step("tiny-bert", b, s, num_labels=C, repeats=0, **c).peak_bytes for c in configs]
    for a, m in zip(analytic, measured, strict=True):
        assert 0.9 * a <= m <= 1.25 * a
    # frozen prefix: no activations stored for it, so measured peak memory grows with t
    ts = measured[: arch.num_blocks + 1]
    assert all(x < y for x, y in itertools.pairwise(ts))
    for i, j in itertools.combinations(range(len(configs)), 2):
        if abs(analytic[i] - analytic[j]) > 0.02 * max(analytic[i], analytic[j]):
            assert (analytic[i] < analytic[j]) == (measured[i] < measured[j]), (configs[i], configs[j])


def test_budgets_pick_the_largest_fitting_configuration(arch):
    L = arch.num_blocks
    full = full_cost(arch, B, S)
    everything = Budget.fraction_of(full, 1.0)
    assert largest_suffix(arch, B, S, everything) == L
    assert largest_window(arch, B, S, everything) == L
    assert largest_suffix(arch, B, S, Budget.fraction_of(full, 0.01)) is None
    fracs = [0.05, 0.125, 0.25, 0.5, 0.75, 1.0]
    for res in (["memory"], ["flops"], ["upload"], ["memory", "flops", "upload"]):
        ts = [largest_suffix(arch, B, S, Budget.fraction_of(full, f, res)) for f in fracs]
        ts = [-1 if t is None else t for t in ts]
        assert ts == sorted(ts), (res, ts)
    # exactly at the cost of t = 1 fits t = 1, one byte less does not
    c1 = step_cost(arch, B, S, t=1)
    assert largest_suffix(arch, B, S, Budget(memory=c1.memory)) == 1
    assert largest_suffix(arch, B, S, Budget(memory=c1.memory - 1)) == 0
    # a window must fit at its most expensive position (lowest start)
    w = largest_window(arch, B, S, Budget(memory=c1.memory))
    assert w == 0 or step_cost(arch, B, S, blocks=range(w)).memory <= c1.memory


def test_largest_rank(arch):
    ranks = [32, 16, 8, 4, 2, 1]
    r8 = step_cost(arch, B, S, r=8)
    assert largest_rank(arch, B, S, Budget(memory=r8.memory), ranks) == 8
    assert largest_rank(arch, B, S, Budget(memory=r8.memory - 1), ranks) == 4
    assert largest_rank(arch, B, S, Budget(upload=1.0), ranks) is None


def test_does_not_fit_is_recorded_as_skipped_by_the_sweep():
    assert issubclass(DoesNotFit, CellNotRunnable) and issubclass(DoesNotFit, ValueError)


def test_rejects_ambiguous_configurations(arch):
    with pytest.raises(ValueError):
        step_cost(arch, B, S, t=1, r=4)
    with pytest.raises(ValueError):
        step_cost(arch, B, S, t=arch.num_blocks + 1)
    with pytest.raises(ValueError):
        lora_params_per_block(arch, 4, ["dense"])


# -- budgets fit on the measured peak (issue 12) ------------------------------------------------------
def test_measured_peak_is_profiled_once_and_cached_on_disk(monkeypatch, tmp_path):
    import fl_core.profiling as prof
    from fl_core.budget_model import MeasuredMemory

    monkeypatch.setenv("LAYERBENCH_CACHE", str(tmp_path))
    measure = MeasuredMemory("tiny-bert", C, 4, 8)
    first = measure({"t": 1})
    assert first == measure_step("tiny-bert", 4, 8, t=1, num_labels=C, repeats=0).peak_bytes
    assert len(list((tmp_path / "memory").glob("*.json"))) == 1

    def no_profiling(*a, **k):
        raise AssertionError("profiled twice")

    monkeypatch.setattr(prof, "measure_step", no_profiling)
    assert measure({"t": 1}) == first  # from the cache
    cost = step_cost(arch_of("tiny-bert", C), 4, 8, t=1, measure=measure)
    assert cost.memory == cost.measured_memory == first and cost.memory_source == "measured"
    assert cost.analytic_memory == step_cost(arch_of("tiny-bert", C), 4, 8, t=1).memory  # the cross-check
    with pytest.raises(AssertionError, match="profiled twice"):
        measure({"t": 0})  # another plan is another profile


def test_budget_between_measured_and_analytic_is_decided_by_the_measurement():
    """A memory budget between a configuration's measured and analytic fractions of full fine-tuning:
    the measured peak decides the fit (the default); the analytic choice is kept as the cross-check."""
    from fl_core.methods.tiny import Tiny, TinyParams

    cfg = RunConfig(
        dataset="bbc_news", alpha=1.0, method=MethodSpec(name="tiny"), seed=0, model="tiny-bert",
        fl=FLConfig(batch_size=8, max_len=16, num_clients=2, clients_per_round=1), data=DataConfig(),
    )  # fmt: skip
    arch = arch_of("tiny-bert", C)
    from fl_core.budget_model import MeasuredMemory

    m = MeasuredMemory("tiny-bert", C, 8, 16)
    frac = {}
    for how, kw in (("measured", {"measure": m}), ("analytic", {})):
        full = full_cost(arch, 8, 16, **kw).memory
        frac[how] = [step_cost(arch, 8, 16, t=t, **kw).memory / full for t in range(arch.num_blocks + 1)]
    t_split = max(range(arch.num_blocks + 1), key=lambda t: abs(frac["measured"][t] - frac["analytic"][t]))
    lo, hi = sorted((frac["measured"][t_split], frac["analytic"][t_split]))
    assert hi - lo > 1e-3  # the two figures disagree about this configuration
    budget = (lo + hi) / 2
    p = TinyParams(budget=budget, constrain=("memory",), candidates=("tiny-bert",))
    plan = Tiny.plan_devices(p, cfg, C)
    assert plan.memory_fit == "measured"

    def expect(f):
        fits = [t for t in range(arch.num_blocks + 1) if f[t] <= budget * (1 + 1e-12)]
        return max(fits, default=None)

    assert plan.choice.t["tiny-bert"] == [expect(frac["measured"])] * 2
    assert plan.analytic.t["tiny-bert"] == [expect(frac["analytic"])] * 2
    assert plan.choice.t != plan.analytic.t
    print(
        f"t={t_split}: measured frac {frac['measured'][t_split]:.4f}, analytic {frac['analytic'][t_split]:.4f}; "
        f"budget {budget:.4f}: measured fit t={plan.choice.t['tiny-bert'][0]}, analytic t={plan.analytic.t['tiny-bert'][0]}"
    )
    ablation = Tiny.plan_devices(p.model_copy(update={"memory_fit": "analytic"}), cfg, C)
    assert ablation.memory_fit == "analytic" and ablation.choice.t == plan.analytic.t
