"""One writer per results store: a ``filelock`` lock on ``<output_dir>/.sweep.lock`` for a sweep.

The holder writes its PID to ``.sweep.owner`` (the lock file itself is the library's), so a second
sweep on the same store can say who holds it. The lock is an OS lock (``flock``): it goes away with
its process, a killed sweep never leaves a stale lock behind.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

from filelock import FileLock, Timeout

from fl_core.errors import StoreError

LOCK, OWNER = ".sweep.lock", ".sweep.owner"


class StoreBusy(StoreError):
    """Another live process is writing this store."""


def pid_alive(pid: int) -> bool:
    """Whether a process ``pid`` exists on this machine (signal 0 probes without signalling)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def _holder(root: Path) -> str:
    """``sweep (PID 123)`` from the owner file (``<pid> [<command>]``), as far as it says."""
    try:
        pid, *what = (root / OWNER).read_text().split()
    except (OSError, ValueError):
        return "another sweep (PID unknown)"
    return f"another {what[0] if what else 'sweep'} (PID {pid})"


@contextlib.contextmanager
def store_lock(root: str | Path, wait_s: float = 0.0, who: str = "sweep") -> Iterator[None]:
    """Hold the store's lock for the block; waits up to ``wait_s`` (0: fail at once, -1: forever)
    for another holder, then raises :class:`StoreBusy` naming its PID. ``who`` (``sweep``, ``run``,
    ``report``) is what a refused process is told holds it."""
    root = Path(root)
    try:
        root.mkdir(parents=True, exist_ok=True)
        lock = FileLock(root / LOCK, timeout=wait_s)
        lock.acquire()
    except Timeout:
        raise StoreBusy(
            f"{_holder(root)} is writing {root}; wait for it to finish (--wait SECONDS), "
            "or use another output_dir"
        ) from None
    except OSError as err:
        raise StoreError(
            f"results directory {root} is not writable: cannot create its lock {root / LOCK}: "
            f"{err.strerror or err}"
        ) from None
    try:
        with contextlib.suppress(OSError):  # a full disk must not stop the lock; the PID is a courtesy
            (root / OWNER).write_text(f"{os.getpid()} {who}\n")
        yield
    finally:
        with contextlib.suppress(OSError):
            (root / OWNER).unlink()
        lock.release()


_PID_IN_NAME = re.compile(r"(?:\.tmp-[0-9a-f]+-|\.old-[0-9a-f]+-|\.tmp)(\d+)(?:-|$)")


def owner_pid(name: str) -> int | None:
    """The writer's PID a temp name carries (``.tmp-<hash>-<pid>-…``, ``<hash>.tmp<pid>``), if any."""
    m = _PID_IN_NAME.search(name)
    return int(m.group(1)) if m else None


def clean_partials(root: str | Path, only_pid: int | None = None) -> list[Path]:
    """Remove temp dirs/files of the store and its checkpoints whose writer is gone (or, with
    ``only_pid``, those of that process: its own partials after a storage fault). Returns them."""
    root = Path(root)
    found = [*root.glob("runs/.tmp-*"), *root.glob("runs/.old-*"), *root.glob("checkpoints/*.tmp*")]
    removed = []
    for p in found:
        pid = owner_pid(p.name)
        mine = only_pid is not None and pid == only_pid
        if (only_pid is None and (pid is None or not pid_alive(pid))) or mine:
            if p.is_dir():
                shutil.rmtree(p, ignore_errors=True)
            else:
                p.unlink(missing_ok=True)
            removed.append(p)
    return removed
