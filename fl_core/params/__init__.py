"""Torch-free method declarations (params + checks), one module per method module; importing this
package declares every built-in method. A new method adds its module and one line here."""

from fl_core.params import (  # noqa: F401  (declaration side effects)
    centralized,
    fedtlu,
    fibecfed,
    lora,
    random_k,
    reference,
    selective,
    tiny,
)
from fl_core.params.base import DECLARED, Declared, NoParams, check_k, check_params, declare

__all__ = ["DECLARED", "Declared", "NoParams", "check_k", "check_params", "declare"]
