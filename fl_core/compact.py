"""The compact copy of a grid's runs, committed beside its report: ``runs.csv.gz``.

Raw runs (``<output_dir>/runs/<hash>/``) stay out of git. The compact copy is one gzipped CSV with one
row per (cell, file): ``config_hash``, ``file`` (``config.json``, ``result.json``, ``rounds.csv``,
``costs.csv``, ``selections.csv``, ``partition.json``, ``MANIFEST.json``) and ``text``, the file
verbatim. So every cell's rounds, costs, selections, partition, status and reason, config, package
versions and git revision are in it, and :func:`materialize` rebuilds a store whose checksums verify:
the report and the notebooks read it exactly like the raw runs. Written deterministically (sorted rows,
gzip mtime 0): the same runs give the same bytes.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from fl_core.store import ResultStore

COMPACT = "runs.csv.gz"
COLUMNS = ["config_hash", "file", "text"]


def write_compact(store_root: str | Path, hashes: Iterable[str], path: str | Path) -> int:
    """Write the verified cells among ``hashes`` of the store at ``store_root`` to ``path``
    (atomically); returns how many cells it holds."""
    store, path = ResultStore(store_root), Path(path)
    rows = []
    for h in sorted(set(hashes)):
        if not store.verify(h):
            continue
        d = store.path(h)
        rows += [(h, f.name, f.read_text()) for f in sorted(d.iterdir()) if f.is_file()]
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        pd.DataFrame(rows, columns=COLUMNS).to_csv(
            tmp, index=False, compression={"method": "gzip", "mtime": 0}
        )
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return len({r[0] for r in rows})


def read_compact(path: str | Path) -> pd.DataFrame:
    """The rows of a compact copy (``text`` never parsed as numbers, empty files as ``""``)."""
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def compact_hashes(path: str | Path) -> set[str]:
    """Config hashes of the cells a compact copy holds (empty if there is none)."""
    p = Path(path)
    return set(read_compact(p).config_hash) if p.is_file() else set()


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
        for (h, name), text in read_compact(path).set_index(["config_hash", "file"]).text.items():
            d = tmp / "runs" / h
            d.mkdir(parents=True, exist_ok=True)
            (d / name).write_text(text)
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
    rows = read_compact(path)
    todo = sorted(set(hashes) & set(rows.config_hash) - {h for h in hashes if store.verify(h)})
    done = []
    for h, files in rows[rows.config_hash.isin(todo)].groupby("config_hash"):
        store.runs.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=store.runs, prefix=f".tmp-{h}-{os.getpid()}-"))
        for name, text in zip(files.file, files.text, strict=True):
            (tmp / name).write_text(text)
        shutil.rmtree(store.path(h), ignore_errors=True)  # a damaged copy (it did not verify)
        tmp.rename(store.path(h))
        if store.verify(h):
            done.append(h)
        else:  # the compact copy itself is damaged: the cell runs again
            shutil.rmtree(store.path(h), ignore_errors=True)
    return done


def store_or_compact(root: str | Path) -> Path:
    """``root`` itself when it holds raw runs, else the store rebuilt from its ``runs.csv.gz`` (a fresh
    clone has only the compact copy of a published grid)."""
    root = Path(root)
    runs = root / "runs"
    has_raw = runs.is_dir() and any(p.is_dir() and not p.name.startswith(".") for p in runs.iterdir())
    return materialize(root / COMPACT) if not has_raw and (root / COMPACT).is_file() else root
