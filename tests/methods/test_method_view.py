"""Methods see a read-only :class:`MethodView` of the run, never the :class:`RunContext` (issue 27):
no method source reaches past the view, the view cannot change the run's state, and a method written
outside the package runs a round through it."""

from __future__ import annotations

import ast
from pathlib import Path
from types import MappingProxyType

import numpy as np
import pytest
import torch

from fl_core.method_view import MethodView
from fl_core.methods import make_method
from fl_core.methods.base import Method, NoParams, TrainPlan
from fl_core.passes import ExtraPass
from fl_core.simulator import build_context, run_round
from tests.conftest import tiny_cell

METHODS_DIR = Path(__file__).resolve().parents[2] / "fl_core" / "methods"
#: RunContext members a method must never reach (the view defines none of them)
FORBIDDEN = {
    "costs",
    "touched",
    "prefix_cache",
    "shares",
    "splits",
    "clients",
    "precision",
    "precision_reason",
}
ALLOWED = {k for k in dir(MethodView) if not k.startswith("_")}


def _is_ctx(node: ast.AST) -> bool:
    """``ctx`` or ``self.ctx`` (a method's local alias of its view, or the view itself)."""
    if isinstance(node, ast.Name):
        return node.id == "ctx"
    return isinstance(node, ast.Attribute) and node.attr == "ctx" and isinstance(node.value, ast.Name)


def view_violations(src: str, where: str = "<src>") -> list[str]:
    """Each ``ctx.<attr>`` / ``self.ctx.<attr>`` the view does not define, and each unwrapping of a
    view (``._ctx``, ``framework_context``), in ``src``."""
    out = []
    for node in ast.walk(ast.parse(src)):
        if isinstance(node, ast.Attribute) and (
            node.attr == "_ctx" or (_is_ctx(node.value) and node.attr not in ALLOWED)
        ):
            out.append(f"{where}:{node.lineno}: ctx.{node.attr}")
        elif (isinstance(node, ast.Name) and node.id == "framework_context") or (
            isinstance(node, ast.alias) and node.name == "framework_context"
        ):
            out.append(f"{where}:{getattr(node, 'lineno', '?')}: framework_context")
    return out


def test_the_checker_catches_what_it_forbids():
    bad = "def f(self, ctx):\n    self.ctx.costs.add(1)\n    ctx.touched\n    ctx.splits.train\n    self.ctx.nope()\n"
    assert sorted(v.split(": ")[1] for v in view_violations(bad)) == [
        "ctx.costs",
        "ctx.nope",
        "ctx.splits",
        "ctx.touched",
    ]
    assert (
        len(view_violations("from fl_core.method_view import framework_context\nframework_context(v)\n")) == 2
    )
    assert view_violations("x = self.ctx._ctx\n") and view_violations("x = view._ctx\n")
    assert not view_violations(
        "def f(self):\n    ctx = self.ctx\n    ctx.model, ctx.client_rows(0), ctx.rng(1)\n"
    )


def test_no_method_reaches_past_its_view():
    assert not FORBIDDEN & ALLOWED, "the view must not expose the run's bookkeeping"
    found = []
    for path in sorted(METHODS_DIR.glob("*.py")):
        found += view_violations(path.read_text(), path.name)
    assert not found, "methods use members the MethodView does not define:\n" + "\n".join(found)


@pytest.fixture(scope="module")
def ctx():
    return build_context(tiny_cell("full"))


def test_the_view_is_read_only_and_has_no_cost_log(ctx):
    view = MethodView(ctx)
    for name in FORBIDDEN:
        assert not hasattr(view, name), name
    ctx.global_values = {"w": torch.zeros(2)}
    gv = view.global_values
    assert isinstance(gv, MappingProxyType) and set(gv) == {"w"}
    with pytest.raises(TypeError):
        gv["w"] = torch.ones(2)
    with pytest.raises(TypeError):
        del gv["w"]
    ctx.global_values = {"v": torch.ones(1)}  # the simulator replaces the snapshot every round
    assert set(view.global_values) == {"v"}
    with pytest.raises(AttributeError):
        view.costs = ctx.costs
    rows = view.client_rows(0)
    assert np.array_equal(rows, ctx.clients[0]) and not rows.flags.writeable
    with pytest.raises(ValueError):
        rows[0] = -1
    assert all(not t.flags.writeable for t in view.client_test)
    assert view.num_clients == len(ctx.clients) and view.num_samples(0) == len(ctx.clients[0])
    assert isinstance(make_method("full", {}, ctx).ctx, MethodView)


class _Probe(Method):
    """A method from outside the package: one probe pass per client at setup, the deepest block
    trained; everything through its view."""

    def setup(self) -> None:
        plan = TrainPlan.of([self.num_blocks - 1])
        self.seen = []
        for c in range(self.ctx.num_clients):
            rows = self.ctx.client_rows(c)[:4]
            ep = ExtraPass(self.ctx, -1, c, "probe", bytes_up=8)
            fg = self.ctx.first_grad(plan)
            with torch.no_grad():
                out = ep.measure(lambda r=rows, g=fg: self.ctx.logits(r, "train", g), rows, plan=plan)
            self.seen.append(int(out[0].shape[0]))
            ep.close()

    def configure_train(self, rnd, clients):
        torch.manual_seed(self.ctx.torch_seed("probe", rnd))
        return self.same_for_all(clients, TrainPlan.of([self.num_blocks - 1]))

    def aggregate(self, rnd, updates):
        assert isinstance(self.ctx.global_values, MappingProxyType)
        self.lengths = [int(self.ctx.lengths(self.ctx.client_rows(u.cid)).max()) for u in updates]
        return super().aggregate(rnd, updates)


def test_a_plugin_method_runs_a_round_through_the_view():
    ctx = build_context(tiny_cell("full"))
    method = _Probe(NoParams(), MethodView(ctx))
    method.setup()
    probes = [r for r in ctx.costs.records if r.kind == "probe"]
    assert len(probes) == len(ctx.clients) and all(r.bytes_up == 8 and r.flops_fwd > 0 for r in probes)
    clients = sorted(ctx.rng("t").choice(len(ctx.clients), 2, replace=False).tolist())
    before = ctx.model.state(ctx.model.names_in(ctx.model.num_blocks - 1))
    updates, new = run_round(ctx, method, 0, clients, [])
    assert [u.cid for u in updates] == clients and set(new) >= set(before)
    assert any(not torch.equal(before[n], new[n]) for n in before)
    assert len(method.lengths) == 2
    state = method.state_dict()  # a checkpoint never captures the view or the context
    assert "ctx" not in state and not any(isinstance(v, MethodView) for v in state.values())
