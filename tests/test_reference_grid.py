"""configs/reference.yaml (v2): loads, every registered method is in it, its partitions are the issue's,
every claim resolves to a method that runs; the v1 grid keeps its published cells."""

from __future__ import annotations

from pathlib import Path

import pytest

from fl_core.config import ConfigError
from fl_core.methods import METHODS
from fl_core.report.build import default_claims_path
from fl_core.report.claims import load_claims
from fl_core.validate import load_grid

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
REF = CONFIGS / "reference.yaml"


def test_reference_grid_covers_every_method_and_its_claims():
    g = load_grid(REF, {"tuned": None})
    assert {m.name for m in g.methods} == set(METHODS)  # every registered method
    assert len(g.seeds) >= 5 and g.data.val_fraction > 0
    assert len(g.tuning_seeds()) >= 2 and not set(g.tuning_seeds()) & set(g.seeds)  # no cell is a tuning run
    rt = g.alphas_of("rotten_tomatoes")
    assert "natural:movie_name" in rt and 1.0 in rt and any(isinstance(a, float) and a < 1 for a in rt)
    assert g.alphas_of("bbc_news") == [1.0]  # the control, kept cheap
    assert g.fl.local_steps is None and g.fl.local_epochs == 1  # local epochs, no step cap
    assert g.fl.clients_per_round < g.fl.num_clients  # cross-device: a sample per round
    assert g.fl.rounds // g.fl.eval_every >= 8
    assert default_claims_path(REF) == CONFIGS / "reference.claims.yaml"
    labels = {m.display for m in g.methods}
    for c in load_claims(default_claims_path(REF)).claims:
        for ref in (c.a, *c.b):
            if ref.label:
                assert ref.label in labels, (c.id, ref.label)
            else:  # matched by name + params, exactly one method of the grid
                hits = [
                    m
                    for m in g.methods
                    if m.name == ref.name
                    and all(str(m.params.get(k)) == str(v) for k, v in ref.params.items())
                ]
                assert len(hits) == 1, (c.id, ref.text())
    # every claim of configs/claims.yaml is tested on the reference grid
    base = {c.id for c in load_claims(CONFIGS / "claims.yaml").claims}
    assert base == {c.id for c in load_claims(default_claims_path(REF)).claims}


def test_reference_grid_needs_its_tuned_file_before_a_sweep(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # configs/tuned/reference.yaml is relative to the repo root
    with pytest.raises(ConfigError, match="layerbench tune"):
        load_grid(REF)


# The committed v1 grid (old-format tuned file: one lr per dataset and method, for every partition).
V1_GRID = CONFIGS / "reference_v1.yaml"
V1_RUNS = CONFIGS.parent / "results" / "reference_v1" / "runs.csv.gz"


def test_the_v1_grid_cells_keep_their_hashes_with_the_old_tuned_file():
    """Every cell of the v1 grid, read through its old-format tuned file, is a cell of its published
    store: reading tuned lrs per partition changed no lr and no hash."""
    import pandas as pd

    from fl_core.config import read_tuned

    grid = load_grid(V1_GRID)
    assert not any(isinstance(v, dict) for e in read_tuned(grid.tuned)["chosen"].values() for v in e.values())
    have = set(pd.read_csv(V1_RUNS, usecols=["config_hash"]).config_hash)
    cells = grid.cells()
    assert len(cells) == 340 and all(c.hash() in have for c in cells)
