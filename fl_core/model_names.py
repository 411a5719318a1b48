"""How a model is named in every output, without loading torch (the report imports this).

:data:`RANDOM_MODELS` must list the registry's random-weight entries (``tests`` checks it).
"""

from __future__ import annotations

#: registry names whose weights are random (tests only); labelled as such everywhere
RANDOM_MODELS = frozenset({"tiny-bert", "tiny-llama"})


def model_label(name: str) -> str:
    """How a model is named in every output; random models say so."""
    return f"{name} (RANDOM WEIGHTS, tests only)" if name in RANDOM_MODELS else name
