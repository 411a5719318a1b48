"""The compact copy of a grid's runs, committed beside its report: ``runs.csv.gz``.

Raw runs (``<output_dir>/runs/<hash>/``) stay out of git. The compact copy is one gzipped CSV with one
row per (cell, file): ``config_hash``, ``file`` (``config.json``, ``result.json``, ``rounds.csv``,
``costs.csv``, ``selections.csv``, ``partition.json``, ``MANIFEST.json``) and ``text``, the file
verbatim. So every cell's rounds, costs, selections, partition, status and reason, config, package
versions and git revision are in it, and :func:`materialize` rebuilds a store whose checksums verify:
the report and the notebooks read it exactly like the raw runs. Written deterministically (sorted rows,
gzip with mtime 0 and no file name): the same runs give the same bytes.

A compact copy is data from a pull request: its rows pass :func:`cell_rows` (a hash of the right form, a
known cell file) and every path is built by :func:`fl_core.store.cell_path` (nothing outside the store),
for the report, the sweep's restore and the notebooks alike. A bad row is logged once and skipped.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

import pandas as pd

from fl_core.store import MANIFEST, ResultStore, UnsafePath, cell_path, check_cell_file

log = logging.getLogger(__name__)
_reported: set[tuple[str, str, str]] = set()  # bad rows already logged by this process

COMPACT = "runs.csv.gz"
COLUMNS = ["config_hash", "file", "text"]


def write_compact(store_root: str | Path, hashes: Iterable[str], path: str | Path) -> int:
    """Write the verified cells among ``hashes`` of the store at ``store_root`` to ``path``
    (atomically); returns how many cells it holds."""
    store, path = ResultStore(store_root), Path(path)
    rows = []
    for h in sorted(set(hashes)):
        if store.verify(h):  # so the manifest names only cell files, none of them a link
            names = {*json.loads(cell_path(store.runs, h, MANIFEST).read_text()), MANIFEST}
            rows += [(h, n, cell_path(store.runs, h, n).read_text()) for n in sorted(names)]
    text = pd.DataFrame(rows, columns=COLUMNS).to_csv(index=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:  # the gzip header holds no file name and mtime 0: the same rows give the same bytes
        tmp.write_bytes(gzip.compress(text.encode(), mtime=0))
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return len({r[0] for r in rows})


def read_compact(path: str | Path) -> pd.DataFrame:
    """The rows of a compact copy (``text`` never parsed as numbers, empty files as ``""``)."""
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def cell_rows(path: str | Path) -> Iterator[tuple[str, str, str]]:
    """``(config_hash, file, text)`` of each row of the compact copy at ``path`` that names a cell file
    by a well-formed hash; every other row is skipped, and logged once per process (a warning naming it)."""
    for h, name, text in read_compact(path)[COLUMNS].itertuples(index=False):
        try:
            check_cell_file(h, name)
        except UnsafePath as err:
            if (str(path), h, name) not in _reported:
                _reported.add((str(path), h, name))
                log.warning("%s: skipped the row (config_hash %r, file %r): %s", path, h, name, err)
            continue
        yield h, name, text


def compact_hashes(path: str | Path) -> set[str]:
    """Config hashes of the cells a compact copy holds (empty if there is none); bad rows are skipped."""
    p = Path(path)
    return {h for h, _, _ in cell_rows(p)} if p.is_file() else set()


def _cache_root() -> Path:
    return Path(os.environ.get("LAYERBENCH_CACHE", Path(tempfile.gettempdir()) / "layerbench-cache"))


def materialize(path: str | Path) -> Path:
    """A results store (``<root>/runs/<hash>/``) rebuilt from the compact copy at ``path``; returns its
    root. Cached by the file's sha256 (so an unchanged copy is unpacked once); every cell verifies."""
    path = Path(path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    root = _cache_root() / "compact" / digest
    if (root / "runs").is_dir():
        return root
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=root.parent, prefix=f".tmp-{digest}-{os.getpid()}-"))
    try:
        for h, name, text in cell_rows(path):
            cell_path(tmp / "runs", h).mkdir(parents=True, exist_ok=True)
            cell_path(tmp / "runs", h, name).write_text(text)
        (tmp / "runs").mkdir(exist_ok=True)
        try:
            tmp.rename(root)
        except OSError:  # another reader unpacked the same copy first
            if not (root / "runs").is_dir():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return root


def restore(path: str | Path, store_root: str | Path, hashes: Iterable[str]) -> list[str]:
    """Put the cells among ``hashes`` that the compact copy at ``path`` holds and the raw store at
    ``store_root`` lacks back into the raw store, each verified against its manifest and renamed into
    place (so a fresh clone's sweep resumes from a published grid's finished cells); returns their hashes."""
    path, store = Path(path), ResultStore(store_root)
    if not path.is_file():
        return []
    wanted = set(hashes)
    cells: dict[str, dict[str, str]] = {}
    for h, name, text in cell_rows(path):
        if h in wanted:
            cells.setdefault(h, {})[name] = text
    done = []
    for h in sorted(cells):
        try:
            final = store.path(h)  # refuses a cell directory that is a link out of the store
        except UnsafePath as err:
            log.warning("%s: not restoring cell %s: %s", path, h, err)
            continue
        if store.verify(h) or not _put(store, h, cells[h], final):
            continue
        done.append(h)
    return done


def _put(store: ResultStore, h: str, files: dict[str, str], final: Path) -> bool:
    """Write one cell's ``files`` to a temp dir in the store and rename it to ``final``; True when it
    verifies (else it is removed again: a damaged compact copy, the cell runs again)."""
    store.runs.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=store.runs, prefix=f".tmp-{h}-{os.getpid()}-"))
    for name, text in files.items():
        (tmp / name).write_text(text)
    shutil.rmtree(final, ignore_errors=True)  # a damaged copy (it did not verify)
    tmp.rename(final)
    if store.verify(h):
        return True
    shutil.rmtree(final, ignore_errors=True)
    return False


def store_or_compact(root: str | Path) -> Path:
    """``root`` itself when it holds raw runs, else the store rebuilt from its ``runs.csv.gz`` (a fresh
    clone has only the compact copy of a published grid)."""
    root = Path(root)
    runs = root / "runs"
    has_raw = runs.is_dir() and any(p.is_dir() and not p.name.startswith(".") for p in runs.iterdir())
    return materialize(root / COMPACT) if not has_raw and (root / COMPACT).is_file() else root
