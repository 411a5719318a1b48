"""Registered methods. Importing this package registers every built-in method."""

from fl_core.methods import (  # noqa: F401  (registration side effects; lora before tiny)
    centralized,
    fedtlu,
    fibecfed,
    lora,
    random_k,
    reference,
    selective,
    tiny,
)
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

__all__ = [
    "METHODS",
    "ClientUpdate",
    "Method",
    "NoParams",
    "TrainPlan",
    "make_method",
    "register",
    "validate_params",
]
