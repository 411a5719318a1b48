"""Storage faults are outcomes, not crashes: a full or read-only disk during a cell marks that cell
``failed`` with the reason (after its own partial writes are removed, to make room) and stops the sweep
with one :class:`~fl_core.store.StoreError` line; the next start removes any partial left behind."""

from __future__ import annotations

import errno
import logging
import os
import re
from collections.abc import Callable, Collection, Sequence
from typing import Any

from fl_core.lock import clean_partials
from fl_core.store import ResultStore, StoreError

log = logging.getLogger(__name__)

#: errnos that mean "the storage cannot take this write", not "the code is wrong"
STORAGE_ERRNOS = {errno.ENOSPC, errno.EROFS, errno.EDQUOT, errno.EACCES, errno.EPERM, errno.EIO}


_RUST_OS_ERROR = re.compile(r"\(os error (\d+)\)")


class StorageFault(StoreError):
    """The disk refused a write during a sweep; the message says what to free or fix."""


def storage_oserror(err: BaseException | None) -> OSError | None:
    """The storage ``OSError`` behind ``err``, if any: itself, one it was raised from or during, or
    the ``(os error N)`` that Rust-backed writers (safetensors: ``SafetensorError``) put in the message."""
    seen = 0
    while err is not None and seen < 10:
        if isinstance(err, OSError) and err.errno in STORAGE_ERRNOS:
            return err
        m = _RUST_OS_ERROR.search(str(err))
        if m and int(m[1]) in STORAGE_ERRNOS:
            return OSError(int(m[1]), os.strerror(int(m[1])))
        err, seen = err.__cause__ or err.__context__, seen + 1
    return None


def is_storage_error(err: BaseException) -> bool:
    return storage_oserror(err) is not None


def storage_guard(fn: Callable[..., Any], *args: Any) -> Any:
    """``fn(*args)``, or the storage ``OSError`` behind what it raised (returned, for the sweep to record)."""
    try:
        return fn(*args)
    except Exception as err:
        if not is_storage_error(err):
            raise
        return storage_oserror(err)


def stop_on_storage_fault(
    store: ResultStore, cell: Any, name: str, err: OSError, failed_result: Callable, stored: int
) -> None:
    """Remove this process's partial writes, record ``cell`` as failed if there is room now, and raise
    a one-line :class:`StorageFault`."""
    for p in clean_partials(store.root, only_pid=os.getpid()):
        log.info("removed the partial write %s", p)
    reason = f"storage error: {err.strerror or err} ({err.filename or store.root})"
    try:
        store.write(cell, failed_result(cell, reason), {}, {})
        recorded = "recorded it as failed"
    except OSError as again:
        log.debug("recording the failure failed too: %s", again)
        recorded = f"could not record it either: {again.strerror or again} ({again.filename or store.runs})"
    fix = {errno.ENOSPC: "Free space", errno.EDQUOT: "Free space (quota)", errno.EROFS: "Remount read-write"}
    raise StorageFault(
        f"sweep stopped in cell {name}: {reason}; {stored} cells stored by this run, {recorded}. "
        f"{fix.get(err.errno, 'Fix permissions')} under {store.root}, then run the same command to resume"
    ) from err


def announce_reruns(
    store: ResultStore, todo: Sequence[Any], cell_name: Callable[[Any], str], told: Collection[str] = ()
) -> None:
    """Say which cells run again because their stored copy is corrupted or failed (but not the cells
    in ``told``, whose damage was announced already)."""
    for c in todo:
        h = c.hash()
        if h in told or not store.path(h).exists():
            continue
        if not store.verify(h):
            log.warning(
                "cell %s: its stored copy %s fails its checksums (corrupted); running it again",
                cell_name(c),
                store.path(h),
            )
        else:
            log.info("cell %s: failed last time; running it again", cell_name(c))
