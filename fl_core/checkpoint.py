"""In-cell checkpoints that never run code when read: one safetensors file, no pickle.

Tensors and NumPy arrays go into the safetensors body; everything else (method state, touched set,
cost records, logs) is JSON, stored in the same file as a ``uint8`` tensor. The JSON codec below is
hand-written because no library round-trips sets, tuples, int-keyed dicts, NumPy scalars and
dataclasses without pickle. It rebuilds only plain data, tensors, arrays, and dataclass / pydantic
instances of classes defined in ``fl_core`` (attributes set one by one: no ``__init__`` runs).
A file that fails to decode is reported once and the cell starts afresh.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import json
import logging
import os
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch
from pydantic import BaseModel
from safetensors import safe_open
from safetensors.torch import save_file

log = logging.getLogger(__name__)

FORMAT = "layerbench-checkpoint/1"
TAG = "__t__"  # marks an encoded non-JSON value
_STATE_KEY = "__state__"


class CheckpointError(ValueError):
    """A checkpoint that cannot be written or read (unsupported type, malformed file)."""


def _in_fl_core(module: str) -> bool:
    return module == "fl_core" or module.startswith("fl_core.")


def _allowed_class(spec: str) -> type:
    """``module:qualname`` of a dataclass or pydantic model defined in ``fl_core``; nothing else. The
    class is looked up attribute by attribute (never through a module: ``fl_core.checkpoint:torch.X``
    names torch's X), then its own ``__module__`` and ``__qualname__`` must be what ``spec`` says."""
    mod, _, qual = spec.partition(":")
    if not _in_fl_core(mod) or not qual:
        raise CheckpointError(f"class {spec!r} is outside fl_core")
    obj: Any = importlib.import_module(mod)
    for part in qual.split("."):
        obj = getattr(obj, part, None)
        if not isinstance(obj, type):
            raise CheckpointError(f"{spec!r} is not a class defined in fl_core")
    if obj.__module__ != mod or obj.__qualname__ != qual or not _in_fl_core(obj.__module__):
        raise CheckpointError(
            f"{spec!r} names {obj.__module__}:{obj.__qualname__}, which is not defined there"
        )
    if not (dataclasses.is_dataclass(obj) or issubclass(obj, BaseModel)):
        raise CheckpointError(f"{spec!r} is not a dataclass or pydantic model")
    return obj


class _Encoder:
    def __init__(self) -> None:
        self.tensors: dict[str, torch.Tensor] = {}
        self._seen: dict[int, str] = {}  # id -> key: one object stored once, aliasing kept

    def _store(self, obj: Any, tensor: torch.Tensor) -> str:
        key = self._seen.get(id(obj))
        if key is None:
            key = self._seen[id(obj)] = f"t{len(self.tensors)}"
            self.tensors[key] = tensor
        return key

    def enc(self, obj: Any, where: str = "state") -> Any:
        t = type(obj)
        if obj is None or t in (bool, int, float, str):
            return obj
        if t is list:
            return [self.enc(v, f"{where}[{i}]") for i, v in enumerate(obj)]
        if t is dict:
            if all(type(k) is str for k in obj) and TAG not in obj:
                return {k: self.enc(v, f"{where}[{k!r}]") for k, v in obj.items()}
            return {
                TAG: "dict",
                "items": [[self.enc(k, where), self.enc(v, f"{where}[{k!r}]")] for k, v in obj.items()],
            }
        if t in (tuple, set, frozenset):
            items = list(obj)
            if t is not tuple:
                with contextlib.suppress(TypeError):
                    items = sorted(items)  # stable file contents
            return {TAG: t.__name__, "v": [self.enc(v, f"{where}[]") for v in items]}
        if t in (torch.Tensor, torch.nn.Parameter):
            if obj.layout != torch.strided or obj.is_quantized:
                raise CheckpointError(f"{where}: only dense tensors can be checkpointed")
            key = self._store(obj, obj.detach().to("cpu", copy=True).contiguous())
            return {TAG: "tensor", "key": key, "param": t is torch.nn.Parameter, "grad": obj.requires_grad}
        if t is np.ndarray:
            return self._ndarray(obj, where)
        if isinstance(obj, np.generic):
            if obj.dtype.hasobject:
                raise CheckpointError(f"{where}: NumPy object scalars cannot be checkpointed")
            return {TAG: "npscalar", "dtype": obj.dtype.str, "hex": obj.tobytes().hex()}
        if dataclasses.is_dataclass(obj) or isinstance(obj, BaseModel):
            return self._object(obj, where)
        raise CheckpointError(f"{where}: cannot checkpoint a {t.__module__}.{t.__qualname__}")

    def _ndarray(self, a: np.ndarray, where: str) -> dict[str, Any]:
        if a.dtype.hasobject or a.dtype.kind == "V":
            raise CheckpointError(f"{where}: NumPy dtype {a.dtype} cannot be checkpointed")
        raw = torch.from_numpy(np.ascontiguousarray(a).reshape(-1).view(np.uint8).copy())
        return {TAG: "ndarray", "key": self._store(a, raw), "dtype": a.dtype.str, "shape": list(a.shape)}

    def _object(self, obj: Any, where: str) -> dict[str, Any]:
        cls = type(obj)
        spec = f"{cls.__module__}:{cls.__qualname__}"
        _allowed_class(spec)  # fail at save time, not at resume
        if isinstance(obj, BaseModel):
            fields = {k: getattr(obj, k) for k in cls.model_fields}
            fields.update(obj.__pydantic_extra__ or {})
            extra = {"set": sorted(obj.model_fields_set)}
        else:
            fields = (
                dict(vars(obj))
                if hasattr(obj, "__dict__")
                else {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}
            )
            extra = {}
        return {TAG: "obj", "type": spec, "v": self.enc(fields, f"{where}.{cls.__name__}"), **extra}


def encode(state: Any) -> tuple[dict[str, torch.Tensor], str]:
    """``state`` as (tensors, JSON text); raises ``CheckpointError`` naming an unsupported value."""
    e = _Encoder()
    return e.tensors, json.dumps(e.enc(state))


def decode(text: str, tensors: dict[str, torch.Tensor]) -> Any:
    """Inverse of :func:`encode`; raises ``CheckpointError`` on anything it did not write."""
    memo: dict[str, Any] = {}  # one object per stored key: aliasing survives the round trip

    def stored(o: dict[str, Any], build) -> Any:
        key = o["key"]
        if key not in memo:
            if key not in tensors:
                raise CheckpointError(f"missing tensor {key!r}")
            memo[key] = build(tensors[key])
        return memo[key]

    def tensor(o: dict[str, Any]) -> torch.Tensor:
        if o.get("param"):
            return stored(o, lambda t: torch.nn.Parameter(t, requires_grad=bool(o.get("grad"))))
        return stored(o, lambda t: t.requires_grad_(bool(o.get("grad"))))

    def ndarray(o: dict[str, Any]) -> np.ndarray:
        dtype = _plain_dtype(o["dtype"])
        return stored(o, lambda t: np.frombuffer(t.numpy().tobytes(), dtype).reshape(o["shape"]).copy())

    def dec(o: Any) -> Any:
        if isinstance(o, list):
            return [dec(v) for v in o]
        if not isinstance(o, dict):
            return o
        tag = o.get(TAG)
        if tag is None:
            return {k: dec(v) for k, v in o.items()}
        if tag == "dict":
            return {_hashable(dec(k)): dec(v) for k, v in o["items"]}
        if tag == "tuple":
            return tuple(dec(v) for v in o["v"])
        if tag in ("set", "frozenset"):
            return (set if tag == "set" else frozenset)(_hashable(dec(v)) for v in o["v"])
        if tag == "tensor":
            return tensor(o)
        if tag == "ndarray":
            return ndarray(o)
        if tag == "npscalar":
            return np.frombuffer(bytes.fromhex(o["hex"]), _plain_dtype(o["dtype"]))[0]
        if tag == "obj":
            return _rebuild(_allowed_class(o["type"]), dec(o["v"]), o.get("set"))
        raise CheckpointError(f"unknown tag {tag!r}")

    return dec(json.loads(text))


def _hashable(v: Any) -> Any:
    if isinstance(v, list | dict | set):
        raise CheckpointError("unhashable key or set member")
    return v


def _plain_dtype(s: str) -> np.dtype:
    if not isinstance(s, str) or not re.fullmatch(r"[<>|=]?[a-zA-Z]\d*(\[\w+\])?", s):
        raise CheckpointError(f"bad dtype {s!r}")
    dt = np.dtype(s)
    if dt.hasobject or dt.kind == "V":
        raise CheckpointError(f"bad dtype {s!r}")
    return dt


def _rebuild(cls: type, fields: dict[str, Any], fields_set: list[str] | None) -> Any:
    if not isinstance(fields, dict) or not all(isinstance(k, str) for k in fields):
        raise CheckpointError(f"bad fields for {cls.__name__}")
    if issubclass(cls, BaseModel):
        return cls.model_construct(_fields_set=set(fields_set or ()), **fields)
    obj = object.__new__(cls)
    for k, v in fields.items():
        object.__setattr__(obj, k, v)  # frozen dataclasses too; no __init__/__post_init__ runs
    return obj


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def clean_stale_temps(directory: str | Path, stem: str = "*") -> list[Path]:
    """Remove ``<stem>.tmp<pid>`` partials whose writer is gone (or is this process, which is not
    writing now); a live writer's temp file is left alone. Returns what was removed."""
    gone = []
    for p in Path(directory).glob(f"{stem}.tmp*"):
        m = re.fullmatch(r".*\.tmp(\d+)", p.name)
        if m and (int(m[1]) == os.getpid() or not _pid_alive(int(m[1]))):
            p.unlink(missing_ok=True)
            gone.append(p)
    return gone


class Checkpoint:
    """In-cell checkpoints every ``every`` rounds, written atomically. Every random stream derives
    from (seed, key), so the global values changed so far, the method's state and the logs are all a
    resume needs to finish bitwise identical to an uninterrupted run."""

    def __init__(self, path: str | Path, every: int = 1) -> None:
        self.path, self.every = Path(path), every

    def due(self, rnd: int) -> bool:
        return self.every > 0 and (rnd + 1) % self.every == 0

    def save(self, state: dict[str, Any]) -> None:
        """Encode (fails on an unsupported value before touching disk), write a temp file, fsync, rename."""
        tensors, text = encode(state)
        tensors[_STATE_KEY] = torch.frombuffer(bytearray(text.encode()), dtype=torch.uint8)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(f".tmp{os.getpid()}")
        try:
            save_file(tensors, tmp, metadata={"format": FORMAT})
            with open(tmp, "rb") as fh:
                os.fsync(fh.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        fd = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def load(self) -> dict[str, Any] | None:
        """The saved state, or ``None`` (no checkpoint, or one that does not decode: warned once)."""
        clean_stale_temps(self.path.parent, self.path.stem)
        if not self.path.exists():
            return None
        try:
            with safe_open(self.path, framework="pt", device="cpu") as f:
                if (f.metadata() or {}).get("format") != FORMAT:
                    raise CheckpointError("not a layerbench checkpoint")
                tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 — safe_open has no iterator
            text = bytes(tensors.pop(_STATE_KEY).numpy()).decode()
            state = decode(text, tensors)
            if not isinstance(state, dict):
                raise CheckpointError("top level is not a dict")
            return state
        except Exception as err:  # noqa: BLE001 — torn, stale, old-format or planted: start afresh
            log.warning(
                "ignoring checkpoint %s (%s: %s); the cell restarts from round 0",
                self.path,
                type(err).__name__,
                err,
            )
            return None

    def clear(self) -> None:
        self.path.unlink(missing_ok=True)
