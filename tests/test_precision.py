"""fl.precision: bf16 autocasts forward/backward; weights, optimizer state and aggregation stay fp32."""

import pytest
import torch

from fl_core.client import make_optimizer, run_client
from fl_core.config import ConfigError
from fl_core.methods import make_method
from fl_core.precision import autocast, resolve_precision
from fl_core.simulator import Checkpoint, build_context, run_cell, run_round
from fl_core.validate import parse_grid
from tests.conftest import tiny_cell, tiny_grid_dict


def _bf16(cell, precision: str = "bf16"):
    return cell.model_copy(update={"fl": cell.fl.model_copy(update={"precision": precision})})


@pytest.fixture
def cpu_without_bf16(monkeypatch):
    """A CPU that reports no avx512_bf16/amx_bf16 (an AVX2-only EPYC), whatever this host has."""
    monkeypatch.setattr("fl_core.precision.cpu_flags", lambda: {"avx2", "fma"})
    monkeypatch.setattr("fl_core.precision._warned", set())


@pytest.fixture
def cpu_with_bf16(monkeypatch):
    monkeypatch.setattr("fl_core.precision.cpu_flags", lambda: {"avx2", "avx512f", "avx512_bf16"})
    monkeypatch.setattr("fl_core.precision._warned", set())


def test_precision_is_part_of_the_config_hash():
    cell = tiny_cell("full")
    assert cell.fl.precision == "fp32"
    assert _bf16(cell).hash() != cell.hash()


def test_bad_precision_is_a_config_error_naming_the_key(tmp_path):
    raw = tiny_grid_dict(tmp_path)
    raw["fl"] = {**raw["fl"], "precision": "fp16"}
    with pytest.raises(ConfigError, match="fl.precision"):
        parse_grid(raw)


def test_autocast_runs_matmuls_in_bf16_only_when_asked():
    a = torch.randn(4, 4)
    with autocast("bf16", torch.device("cpu")):
        assert (a @ a).dtype == torch.bfloat16
    with autocast("fp32", "cpu"):
        assert (a @ a).dtype == torch.float32


def test_bf16_cell_runs_and_differs_from_fp32():
    cell = tiny_cell("full")
    fp32, bf16 = run_cell(cell, progress=False), run_cell(_bf16(cell), progress=False)
    assert bf16.status == "ok" and len(bf16.rounds) == len(fp32.rounds)
    assert all(isinstance(r["loss"], float) for r in bf16.rounds)
    assert [r["train_loss"] for r in bf16.rounds if r["round"] >= 0] != [
        r["train_loss"] for r in fp32.rounds if r["round"] >= 0
    ]


def test_bf16_keeps_weights_optimizer_state_and_aggregation_in_fp32():
    ctx = build_context(_bf16(tiny_cell("full")))
    method = make_method("full", {}, ctx)
    updates, new = run_round(ctx, method, 0, [0, 1], [])
    assert all(d.dtype == torch.float32 for u in updates for d in u.delta.values())
    assert new and all(v.dtype == torch.float32 for v in new.values())
    assert all(p.dtype == torch.float32 for p in ctx.model.params.values())
    names = ctx.trainable_names(method.configure_train(1, [0])[0])
    params = [ctx.model.params[n] for n in names]
    ctx.model.set_trainable(set(names))
    opt = make_optimizer(params, ctx)
    with autocast("bf16", ctx.device):
        logits, y = ctx.logits(ctx.client_batches(0, 1)[0], "train", 0)
        loss = torch.nn.functional.cross_entropy(logits, y)
    assert logits.dtype == torch.bfloat16 and loss.dtype == torch.float32
    loss.backward()
    assert all(p.grad.dtype == torch.float32 for p in params)
    opt.step()
    assert all(t.dtype == torch.float32 for s in opt.state.values() for t in s.values() if t.ndim)
    ctx.model.set_trainable(set())


def test_bf16_client_update_is_deterministic():
    cells = [_bf16(tiny_cell("full")) for _ in range(2)]
    deltas = []
    for cell in cells:
        ctx = build_context(cell)
        method = make_method("full", {}, ctx)
        plan = method.configure_train(0, [0])[0]
        ctx.global_values = ctx.model.state(ctx.trainable_names(plan))
        deltas.append(run_client(ctx, method, 0, 0, plan).delta)
    assert all(torch.equal(deltas[0][n], deltas[1][n]) for n in deltas[0])


def test_bf16_resume_is_bitwise_identical(tmp_path):
    cell = _bf16(tiny_cell("top_k", k=1))
    cell = cell.model_copy(update={"fl": cell.fl.model_copy(update={"rounds": 3})})
    reference = run_cell(cell, progress=False)

    class Stop(Exception):
        pass

    def stop(row):
        if row["round"] == 1:
            raise Stop

    ckpt = Checkpoint(tmp_path / "c.pt", every=1)
    with pytest.raises(Stop):
        run_cell(cell, on_round=stop, progress=False, checkpoint=ckpt)
    resumed = run_cell(cell, progress=False, checkpoint=ckpt)
    assert resumed.rounds == reference.rounds and resumed.selections == reference.selections


def _rounds(res):
    return [r for r in res.rounds if r["round"] >= 0]


def test_auto_runs_fp32_without_native_bf16_and_says_so(cpu_without_bf16, caplog):
    cell = tiny_cell("full")
    auto = run_cell(_bf16(cell, "auto"), progress=False)
    assert auto.info["precision_used"] == "fp32"
    assert "auto" in auto.info["precision_reason"] and "no avx512_bf16" in auto.info["precision_reason"]
    assert _rounds(auto) == _rounds(run_cell(cell, progress=False))  # the same numbers as fp32
    assert not [r for r in caplog.records if r.levelname == "WARNING" and "bf16" in r.getMessage()]


def test_auto_runs_bf16_where_native(cpu_with_bf16):
    cell = tiny_cell("full")
    auto = run_cell(_bf16(cell, "auto"), progress=False)
    assert auto.info["precision_used"] == "bf16" and "avx512_bf16" in auto.info["precision_reason"]
    assert _rounds(auto) == _rounds(run_cell(_bf16(cell), progress=False))


def test_auto_keeps_its_own_hash():
    """The hash holds the config's value: auto cells are not fp32 or bf16 cells (published ones keep theirs)."""
    cell = tiny_cell("full")
    assert len({cell.hash(), _bf16(cell).hash(), _bf16(cell, "auto").hash()}) == 3


def test_explicit_bf16_without_native_support_warns_once_with_the_slowdown(cpu_without_bf16, caplog):
    cell = _bf16(tiny_cell("head"))
    first, second = run_cell(cell, progress=False), run_cell(cell, progress=False)
    assert first.info["precision_used"] == second.info["precision_used"] == "bf16"
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1, warnings
    assert "without native bf16" in warnings[0] and "15x slower" in warnings[0]


def test_explicit_bf16_with_native_support_does_not_warn(cpu_with_bf16, caplog):
    run_cell(_bf16(tiny_cell("head")), progress=False)
    assert not [r for r in caplog.records if r.levelname == "WARNING"]


def test_resolve_precision_fp32_never_looks_at_the_hardware(monkeypatch):
    monkeypatch.setattr("fl_core.precision.bf16_native", lambda d: pytest.fail("probed"))
    assert resolve_precision("fp32", "cpu")[0] == "fp32"
