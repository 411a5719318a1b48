"""How a model is named in every output, without loading torch (the report imports this).

:data:`RANDOM_MODELS` must list the registry's random-weight entries (``tests`` checks it).
"""

from __future__ import annotations

from fl_core.model_specs import MODELS

#: registry names whose weights are random (tests only; plugins' too); labelled as such everywhere
RANDOM_MODELS = frozenset({"tiny-bert", "tiny-llama"}) | frozenset(n for n, e in MODELS.plugins() if e.random)


def model_label(name: str) -> str:
    """How a model is named in every output; random models say so."""
    random = name in RANDOM_MODELS or getattr(MODELS.get(name), "random", False)
    return f"{name} (RANDOM WEIGHTS, tests only)" if random else name
