"""The method contract has three sides: every hook the simulator may call belongs to exactly one."""

from __future__ import annotations

from fl_core.methods import METHODS
from fl_core.methods.base import CellSettings, ClientBehaviour, Method, ServerStrategy

SIDES = (CellSettings, ServerStrategy, ClientBehaviour)
OWN = {"state_dict", "load_state_dict", "num_blocks", "same_for_all"}  # checkpoint and helpers


def _members(cls) -> set[str]:
    return {k for k in vars(cls) if not k.startswith("_")}


def test_each_hook_is_on_exactly_one_side():
    seen: dict[str, str] = {}
    for side in SIDES:
        for k in _members(side) - {"ctx"}:
            assert k not in seen, f"{k} is on {seen[k]} and {side.__name__}"
            seen[k] = side.__name__
    assert _members(Method) == OWN, "a new Method member belongs on one of the three sides"
    assert {"configure_train", "aggregate"} <= {k for k, v in seen.items() if v == "ServerStrategy"}
    assert {"adjust_cell", "resolve", "partition_free"} <= {k for k, v in seen.items() if v == "CellSettings"}


def test_methods_override_only_contract_members():
    """A registered method's public members are hooks of the contract or its own helpers; it never
    redefines a side's hook as something else (e.g. a classmethod as an instance method)."""
    for name, cls in METHODS.items():
        for side in SIDES:
            for k in _members(side) - {"ctx"}:
                base, got = vars(side)[k], getattr(cls, k)
                if isinstance(base, classmethod):
                    assert getattr(got, "__self__", None) is cls, f"{name}.{k} must stay a classmethod"
