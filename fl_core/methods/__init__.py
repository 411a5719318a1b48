"""Registered methods. Importing this package registers every built-in method: each module of the
package (``base`` aside) is imported, in sorted order, and registers its methods with ``@register``.
A new method is ``fl_core/methods/<name>.py`` plus its declaration ``fl_core/params/<name>.py``;
no registry line (``tests/methods/test_discovery.py`` checks that the two halves pair up).

Order: sorted by module name, so ``METHODS`` is filled the same way on every run. A method built on
another imports that module itself (``tiny``'s ``lora_budget`` subclasses ``lora.Lora``: ``tiny``
imports ``fl_core.methods.lora``), so ``lora`` is registered before ``tiny`` whatever the order.

Plugins (entry points ``layerbench.methods``, :mod:`fl_core.registry`) come after the built-ins: each
declaration's ``method`` class is imported here and registered under the entry point's name."""

import importlib
import pkgutil

from fl_core.methods.base import (
    METHODS,
    ClientUpdate,
    Method,
    NoParams,
    TrainPlan,
    make_method,
    register,
    validate_params,
)
from fl_core.params import DECLARED
from fl_core.registry import PluginError

#: the method modules, in the order they were imported
MODULES: tuple[str, ...] = tuple(sorted(m.name for m in pkgutil.iter_modules(__path__) if m.name != "base"))
for _name in MODULES:
    importlib.import_module(f"{__name__}.{_name}")


def _register_plugins() -> None:
    """Register each plugin method (a :data:`DECLARED` entry from the entry-point group
    ``layerbench.methods``) from the ``"module:Class"`` its declaration names."""
    for name, decl in DECLARED.plugins():
        origin = DECLARED.origins[name]
        module, _, attr = decl.method.partition(":")
        if not (module and attr):
            raise PluginError(f"{origin}: method {name!r}: its Declared names no method ('module:Class')")
        try:
            cls = getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError) as err:
            raise PluginError(f"{origin}: method {name!r}: cannot import {decl.method!r}: {err!r}") from err
        if METHODS.get(name) is not cls:  # unless its module registered it itself
            register(name)(cls)


_register_plugins()

__all__ = [
    "METHODS",
    "MODULES",
    "ClientUpdate",
    "Method",
    "NoParams",
    "TrainPlan",
    "make_method",
    "register",
    "validate_params",
]
