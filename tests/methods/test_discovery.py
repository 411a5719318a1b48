"""Adding a method is two modules and no registry line: ``fl_core/methods/<name>.py`` (the method,
found by discovery) and ``fl_core/params/<name>.py`` (its torch-free declaration). A forgotten half
fails here, named."""

from __future__ import annotations

import pkgutil
from pathlib import Path

import fl_core.methods
import fl_core.params
from fl_core.methods import METHODS
from fl_core.params import DECLARED

ROOT = Path(__file__).resolve().parents[2] / "fl_core"


def _modules(package: str) -> set[str]:
    return {m.name for m in pkgutil.iter_modules([str(ROOT / package)])} - {"base"}


def test_every_method_module_has_a_declaration_module_and_vice_versa():
    methods, params = _modules("methods"), _modules("params")
    assert methods, "no method module found"
    missing = [f"fl_core/params/{n}.py (declares fl_core/methods/{n}.py)" for n in sorted(methods - params)]
    missing += [
        f"fl_core/methods/{n}.py (the method fl_core/params/{n}.py declares)"
        for n in sorted(params - methods)
    ]
    assert not missing, "a method is missing a half: " + "; ".join(missing)


def test_every_module_is_discovered_and_imported_in_sorted_order():
    assert list(fl_core.methods.MODULES) == sorted(_modules("methods"))
    assert list(fl_core.params.MODULES) == sorted(_modules("params"))


def test_every_method_module_registers_and_every_declaration_has_a_method():
    registered_by = {cls.__module__.rsplit(".", 1)[1] for cls in METHODS.values()}
    silent = sorted(_modules("methods") - registered_by)
    assert not silent, f"method modules that register nothing (no @register): {silent}"
    assert not (undeclared := sorted(set(METHODS) - set(DECLARED))), f"registered, not declared: {undeclared}"
    assert not (orphans := sorted(set(DECLARED) - set(METHODS))), f"declared, no method registered: {orphans}"


def test_a_method_whose_params_are_not_declared_is_refused_by_name():
    import pytest

    from fl_core.methods.base import Method, register

    with pytest.raises(ValueError, match="'no_such_method'.*fl_core.params"):

        @register("no_such_method")
        class NoSuch(Method):
            pass

    assert "no_such_method" not in METHODS
