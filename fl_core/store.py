"""The local results store: one directory per finished cell, written atomically, checksummed.

``<root>/runs/<config-hash>/`` holds ``config.json``, ``result.json``, ``rounds.csv``, ``costs.csv``,
``selections.csv``, ``partition.json`` and ``MANIFEST.json`` (sha256 of each). A cell is done when
its manifest verifies; a half-written or corrupted cell is not done and is run again.

A cell hash or file name can come from a file (a compact copy arrives by pull request), so every cell
path is built by :func:`cell_path`, which refuses anything that would leave ``<root>/runs/``.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd

from fl_core.config import HASH_LEN, RunConfig
from fl_core.errors import StoreError
from fl_core.lock import clean_partials

MANIFEST = "MANIFEST.json"
#: every file a finished cell holds: the only names a cell directory or a compact copy may carry
CELL_FILES = frozenset(
    {"config.json", "result.json", "rounds.csv", "costs.csv", "selections.csv", "partition.json", MANIFEST}
)
_HASH = re.compile(f"[0-9a-f]{{{HASH_LEN}}}")


class UnsafePath(StoreError):
    """A cell hash or file name (read from a file) that is malformed or would leave the store."""


def check_cell_file(cell_hash: str, name: str | None = None) -> None:
    """Raise :class:`UnsafePath` unless ``cell_hash`` is ``HASH_LEN`` lowercase hex digits and ``name``
    (if given) is one of :data:`CELL_FILES`."""
    if not isinstance(cell_hash, str) or not _HASH.fullmatch(cell_hash):
        raise UnsafePath(f"config hash {cell_hash!r} is not {HASH_LEN} lowercase hex digits")
    if name is not None and name not in CELL_FILES:
        raise UnsafePath(f"file {name!r} is not a cell file ({', '.join(sorted(CELL_FILES))})")


def cell_path(runs: str | Path, cell_hash: str, name: str | None = None) -> Path:
    """``<runs>/<cell_hash>[/<name>]`` after :func:`check_cell_file`, and only where no symbolic link
    below ``runs`` leads elsewhere (``runs`` itself may be a link: the user's choice of disk). Raises
    :class:`UnsafePath` naming what is wrong."""
    check_cell_file(cell_hash, name)
    base = Path(runs).resolve()
    want = base / cell_hash if name is None else base / cell_hash / name
    path = Path(runs) / want.relative_to(base)
    if want.resolve() != want:
        raise UnsafePath(f"{path} is a symbolic link (to {want.resolve()}), not a file of the store")
    return path


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class ResultStore:
    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.runs = self.root / "runs"

    def check_writable(self, need_bytes: int = 50 * 2**20) -> None:
        """Fail before training if results cannot be written (read-only dir, full disk)."""
        try:
            self.runs.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=self.runs, prefix=".probe-") as f:
                f.write(b"x" * 4096)
                f.flush()
                os.fsync(f.fileno())
        except OSError as err:
            raise StoreError(
                f"results directory {self.runs} is not writable: {err}. Set output_dir or fix permissions."
            ) from None
        free = shutil.disk_usage(self.runs).free
        if free < need_bytes:
            raise StoreError(
                f"only {free / 2**20:.0f} MiB free under {self.runs}; need at least {need_bytes / 2**20:.0f} MiB"
            )

    def path(self, cell_hash: str) -> Path:
        """The cell's directory (:func:`cell_path`: raises :class:`UnsafePath` for a bad hash or a link out)."""
        return cell_path(self.runs, cell_hash)

    def is_done(self, cell_hash: str) -> bool:
        """Verified and not ``failed`` (a failed cell is kept for the table, and run again)."""
        return self.verify(cell_hash) and self.load_result(cell_hash).get("status") != "failed"

    def verify(self, cell_hash: str) -> bool:
        """The manifest names only cell files, each of which is in the store and has its checksum."""
        try:
            manifest = json.loads(cell_path(self.runs, cell_hash, MANIFEST).read_text())
            return all(_sha256(cell_path(self.runs, cell_hash, n)) == sha for n, sha in manifest.items())
        except (OSError, ValueError, UnsafePath, AttributeError, TypeError):
            return False

    def damage(self, cell_hash: str) -> str | None:
        """What fails in a stored cell (a missing or unreadable manifest, or the files whose checksum
        differs), or None when it verifies."""
        d = self.path(cell_hash)
        try:
            manifest = json.loads((d / MANIFEST).read_text())
        except (OSError, ValueError) as err:
            return f"{MANIFEST} unreadable: {type(err).__name__}"
        bad = []
        for name, digest in sorted(manifest.items()):
            try:
                if _sha256(d / name) != digest:
                    bad.append(f"{name} fails its checksum")
            except OSError:
                bad.append(f"{name} missing")
        return "; ".join(bad) or None

    def write(
        self, cfg: RunConfig, result: dict[str, Any], tables: dict[str, list[dict]], extra: dict[str, Any]
    ) -> Path:
        """Write a finished cell atomically: a temp dir, fsync'd, then one ``rename``."""
        h = cfg.hash()
        self.runs.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=self.runs, prefix=f".tmp-{h}-{os.getpid()}-"))
        try:
            files = {
                "config.json": json.dumps(cfg.model_dump(mode="json"), indent=1, sort_keys=True),
                "result.json": json.dumps(result, indent=1, sort_keys=True, default=str),
            }
            for name, obj in extra.items():
                files[f"{name}.json"] = json.dumps(obj, sort_keys=True, default=str)
            for name, rows in tables.items():
                files[f"{name}.csv"] = pd.DataFrame(rows).to_csv(index=False)
            for name, text in files.items():
                (tmp / name).write_text(text)
            manifest = {name: _sha256(tmp / name) for name in files}
            (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True))
            for f in tmp.iterdir():
                with open(f, "rb") as fh:
                    os.fsync(fh.fileno())
            return self._swap_in(tmp, self.path(h))
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise

    def _swap_in(self, tmp: Path, final: Path) -> Path:
        """Rename ``tmp`` to ``final``; an older or corrupted copy is moved aside first. Another writer
        finishing the same cell at the same time is fine: whichever verified copy lands first stays."""
        for _ in range(5):
            try:
                tmp.rename(final)
                return final
            except OSError as err:
                if err.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                    raise
            if self.verify(final.name) and self.load_result(final.name).get("status") != "failed":
                shutil.rmtree(tmp, ignore_errors=True)  # a concurrent finisher of the same cell won
                return final
            trash = Path(tempfile.mkdtemp(dir=self.runs, prefix=f".old-{final.name}-{os.getpid()}-"))
            with contextlib.suppress(FileNotFoundError):  # gone already: someone else moved it
                final.rename(trash / "old")
            shutil.rmtree(trash, ignore_errors=True)
        raise StoreError(f"could not write {final}: other writers keep replacing it")

    def load_result(self, cell_hash: str) -> dict[str, Any]:
        return json.loads((self.path(cell_hash) / "result.json").read_text())

    def load_table(self, cell_hash: str, name: str) -> pd.DataFrame:
        p = self.path(cell_hash) / f"{name}.csv"
        with contextlib.suppress(pd.errors.EmptyDataError):
            return pd.read_csv(p)
        return pd.DataFrame()

    def clean_temp(self) -> list[Path]:
        """Remove temp dirs and checkpoint partials whose writer process is gone (never a finished cell,
        never a live writer's); returns what was removed."""
        return clean_partials(self.root)
