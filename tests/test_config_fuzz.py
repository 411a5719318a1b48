"""Config validation fuzzed: every invalid config raises ConfigError naming a key, never a traceback."""

import copy

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fl_core.config import ConfigError
from fl_core.validate import parse_grid
from tests.conftest import tiny_grid_dict

BASE = tiny_grid_dict(__import__("pathlib").Path("/tmp/unused"))
VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 50),
    st.floats(-2, 2),
    st.just(float("nan")),
    st.text(max_size=8),
    st.lists(st.integers(-1, 3), max_size=3),
    st.dictionaries(st.text(max_size=4), st.integers(), max_size=2),
)
PATHS = [
    ("fl", "num_clients"),
    ("fl", "clients_per_round"),
    ("fl", "rounds"),
    ("fl", "lr"),
    ("fl", "batch_size"),
    ("fl", "optimizer"),
    ("fl", "max_len"),
    ("data", "test_fraction"),
    ("data", "min_partition_size"),
    ("alphas",),
    ("seeds",),
    ("datasets",),
    ("model",),
    ("methods",),
    ("wandb", "mode"),
    ("name",),
    ("fl", "typo_key"),
    ("typo_top",),
    ("checkpoint_every",),
]


def mutate(path, value):
    d = copy.deepcopy(BASE)
    node = d
    for p in path[:-1]:
        node = node[p]
    node[path[-1]] = value
    return d


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(PATHS), VALUES)
def test_mutated_configs_validate_or_raise_config_error(path, value):
    d = mutate(path, value)
    try:
        parse_grid(d)
    except ConfigError as err:
        msg = str(err)
        assert msg.startswith("invalid config") and (path[-1] in msg or path[0] in msg), msg


@settings(max_examples=100, deadline=None)
@given(
    st.sampled_from(["full", "head", "top_k", "bottom_k", "random"]),
    st.dictionaries(
        st.sampled_from(["k", "mode", "kk", "client_training"]),
        st.one_of(st.integers(-3, 9), st.text(max_size=6)),
        max_size=3,
    ),
)
def test_mutated_method_params(name, params):
    try:
        parse_grid({**BASE, "methods": [{"name": name, "params": params}]})
    except ConfigError as err:
        assert "methods[0].params" in str(err)
