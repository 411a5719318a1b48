"""Registered methods. Importing this package registers every built-in method: each module of the
package (``base`` aside) is imported, in sorted order, and registers its methods with ``@register``.
A new method is ``fl_core/methods/<name>.py`` plus its declaration ``fl_core/params/<name>.py``;
no registry line (``tests/methods/test_discovery.py`` checks that the two halves pair up).

Order: sorted by module name, so ``METHODS`` is filled the same way on every run. A method built on
another imports that module itself (``tiny``'s ``lora_budget`` subclasses ``lora.Lora``: ``tiny``
imports ``fl_core.methods.lora``), so ``lora`` is registered before ``tiny`` whatever the order."""

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

#: the method modules, in the order they were imported
MODULES: tuple[str, ...] = tuple(sorted(m.name for m in pkgutil.iter_modules(__path__) if m.name != "base"))
for _name in MODULES:
    importlib.import_module(f"{__name__}.{_name}")

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
