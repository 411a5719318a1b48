"""Registered methods. Importing this package registers every built-in method."""

from fl_core.methods import random_k, reference  # noqa: F401  (registration side effects)
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

__all__ = ["METHODS", "ClientUpdate", "Method", "NoParams", "TrainPlan", "make_method", "register", "validate_params"]
