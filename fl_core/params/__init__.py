"""Torch-free method declarations (params + checks), one module per method module; importing this
package declares every built-in method: each module of the package (``base`` aside) is imported, in
sorted order. A new method adds its module here and its method module in :mod:`fl_core.methods`;
no registry line. (``tiny`` imports ``lora`` for its dropout default: an explicit import, so the
order does not matter.) A method from another package is an entry point of the group
``layerbench.methods`` naming its :class:`Declared` (see :mod:`fl_core.registry`)."""

import importlib
import pkgutil

from fl_core.params.base import DECLARED, Declared, NoParams, check_k, check_params, declare

#: the declaration modules, in the order they were imported
MODULES: tuple[str, ...] = tuple(sorted(m.name for m in pkgutil.iter_modules(__path__) if m.name != "base"))
for _name in MODULES:
    importlib.import_module(f"{__name__}.{_name}")
#: then the plugins: entry points ``layerbench.methods``, each a torch-free :class:`Declared`
DECLARED.load_plugins("layerbench.methods", Declared)

__all__ = ["DECLARED", "MODULES", "Declared", "NoParams", "check_k", "check_params", "declare"]
