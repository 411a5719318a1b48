"""A planted ``runs.csv.gz`` never writes outside the store: an absolute file name, a ``..`` file name, a
crafted config hash and a cell directory that is a symbolic link out are each skipped with one warning,
by the report's and the notebooks' unpacking (``materialize`` / ``load_results``) and by the sweep's
``restore``; the genuine cells still come through."""

from __future__ import annotations

import gzip
import logging
from pathlib import Path

import pandas as pd
import pytest

from fl_core.compact import COLUMNS, COMPACT, materialize, read_compact, restore, write_compact
from fl_core.report.load import load_results
from fl_core.store import ResultStore, UnsafePath, cell_path

UP = "../" * 40  # climbs to / from any depth


@pytest.fixture
def planted(fixture_store, tmp_path, monkeypatch):
    """(compact copy with the genuine cells and every attack row, genuine hashes, outside dir, bad rows)."""
    monkeypatch.setenv("LAYERBENCH_CACHE", str(tmp_path / "cache"))
    outside = tmp_path / "outside"
    outside.mkdir()
    hashes = sorted(p.name for p in (fixture_store / "runs").iterdir() if p.is_dir())[:3]
    path = tmp_path / "results" / COMPACT
    write_compact(fixture_store, hashes, path)
    good = read_compact(path)
    text = good.text.iloc[0]
    bad = [
        (hashes[0], str(outside / "absolute.pth")),  # an absolute file name
        (hashes[0], UP + str(outside / "dotdot.pth").lstrip("/")),  # a `..` file name
        (UP + str(outside / "crafted").lstrip("/"), "config.json"),  # a hash that is a path
        ("zzzzzzzzzzzzzzzz", "config.json"),  # a directory named by a crafted hash
        (hashes[0].upper(), "config.json"),  # hex, but not the form RunConfig.hash writes
        (hashes[0], "evil.pth"),  # not a cell file
    ]
    rows = pd.concat([good, pd.DataFrame([(h, f, text) for h, f in bad], columns=COLUMNS)])
    path.write_bytes(gzip.compress(rows.to_csv(index=False).encode(), mtime=0))
    return path, hashes, outside, bad


def _written(outside: Path) -> list[Path]:
    return sorted(outside.rglob("*"))


def _warned_once(caplog, bad) -> None:
    for h, f in bad:
        hits = [r for r in caplog.records if r.levelno == logging.WARNING and repr(h) in r.getMessage()]
        assert len([r for r in hits if repr(f) in r.getMessage()]) == 1, (h, f, caplog.text)


def test_report_and_notebook_unpacking_skip_every_bad_row(planted, caplog):
    path, hashes, outside, bad = planted
    root = materialize(path)  # what the report builds from in a fresh clone
    res = load_results(path.parent)  # what a notebook opens
    assert _written(outside) == [] and not Path("/" + str(outside).lstrip("/") + "/crafted").exists()
    assert sorted(p.name for p in (root / "runs").iterdir()) == hashes
    assert all(ResultStore(root).verify(h) for h in hashes)
    assert sorted(res.cells.config_hash) == hashes
    assert not list(root.rglob("*.pth"))
    _warned_once(caplog, bad)


def test_restore_skips_every_bad_row_and_a_cell_linked_out_of_the_store(planted, tmp_path, caplog):
    path, hashes, outside, bad = planted
    store = ResultStore(tmp_path / "store")
    store.runs.mkdir(parents=True)
    linked = outside / "linked"
    linked.mkdir()
    (store.runs / hashes[1]).symlink_to(linked, target_is_directory=True)
    crafted = [h for h, _ in bad]
    done = restore(path, store.root, [*hashes, *crafted])
    assert done == [hashes[0], hashes[2]]
    assert _written(outside) == [linked]  # nothing written through the link, nor anywhere else outside
    assert sorted(p.name for p in store.runs.iterdir()) == hashes  # no directory named by a bad hash
    assert not store.verify(hashes[1]) and [h for h in hashes if store.verify(h)] == done
    assert not list(store.root.rglob("*.pth"))
    _warned_once(caplog, bad)
    assert sum(hashes[1] in r.getMessage() and "symbolic link" in r.getMessage() for r in caplog.records) == 1


@pytest.mark.parametrize(
    ("h", "name"),
    [
        ("0" * 16, "/etc/passwd"),
        ("0" * 16, "../x.json"),
        ("../" * 8, None),
        ("0" * 15, None),
        ("0" * 17, None),
    ],
)
def test_cell_path_refuses_what_would_leave_the_store(tmp_path, h, name):
    with pytest.raises(UnsafePath):
        cell_path(tmp_path, h, name)


def test_the_store_itself_may_live_behind_a_link(tmp_path):
    """``runs`` a link to another disk is the user's choice: cells under it are fine."""
    (tmp_path / "disk").mkdir()
    (tmp_path / "runs").symlink_to(tmp_path / "disk", target_is_directory=True)
    assert (
        cell_path(tmp_path / "runs", "0" * 16, "config.json")
        == tmp_path / "runs" / ("0" * 16) / "config.json"
    )
