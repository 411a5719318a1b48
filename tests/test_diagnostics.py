"""Method diagnostics are declared once (fl_core.diagnostics); an undeclared key fails the cell, naming it."""

from __future__ import annotations

import pytest

from fl_core.diagnostics import DECLARED, Diagnostic, column, declare, undeclared
from fl_core.methods.base import Method
from fl_core.simulator import diagnostic_columns


def test_columns_come_from_the_declaration():
    assert column("round", "applied_blocks") == "method_applied_blocks"
    assert column("client", "gal") == "info_gal"
    with pytest.raises(KeyError, match="not_a_key"):
        column("round", "not_a_key")


def test_a_key_declared_twice_must_mean_the_same():
    d = Diagnostic("zz_test_key", "round", "a test key")
    declare(d, d)  # the same declaration again is fine
    with pytest.raises(ValueError, match="zz_test_key"):
        declare(Diagnostic("zz_test_key", "round", "something else"))
    del DECLARED[("round", "zz_test_key")]


def test_an_undeclared_diagnostic_is_an_error_naming_the_method_and_the_key():
    class Plugin(Method):
        name = "my_plugin"

    assert undeclared("client", {"gal": 1, "mystery": 2}) == ["mystery"]
    with pytest.raises(ValueError, match=r"'my_plugin'.*\['mystery'\].*declare"):
        diagnostic_columns("client", {"gal": [1], "mystery": 2}, Plugin)  # type: ignore[arg-type]
    assert diagnostic_columns("round", {"data_share": 0.5}, Plugin) == {"method_data_share": 0.5}  # type: ignore[arg-type]
