"""One registry pattern for methods, datasets and models: name -> entry, each entry with its origin
(``built-in``, or ``plugin <distribution>`` when a package installed beside layerbench adds it through a
Python entry point). Torch-free and light: validation and ``layerbench list`` read the registries.

Entry-point groups (see the README, "Add your method without forking"):

- ``layerbench.methods``: ``<name> = "pkg.params:DECLARED"``, a :class:`fl_core.params.base.Declared`
  whose module imports no torch; its ``method`` (``"pkg.method:Class"``) is imported only to run.
- ``layerbench.datasets``: ``<name> = "pkg.data:DATASET"``, a :class:`fl_core.dataset_names.DatasetPlugin`.
- ``layerbench.models``: ``<name> = "pkg.models:MODEL"``, a :class:`fl_core.model_specs.ModelEntry`.

A name defined twice (a plugin reusing a built-in's name, or two plugins) is a :class:`PluginError`
naming both origins."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from functools import cache
from importlib.metadata import EntryPoint, EntryPoints, entry_points
from typing import TypeVar

T = TypeVar("T")

BUILT_IN = "built-in"
GROUPS = ("layerbench.methods", "layerbench.datasets", "layerbench.models")


class PluginError(ValueError):
    """A plugin that cannot be registered (a name defined twice, a bad entry point); names the plugin."""


@cache
def _all_entry_points() -> EntryPoints:
    return entry_points()  # one scan of the installed distributions, shared by the three groups


def plugin_entry_points(group: str) -> list[EntryPoint]:
    """The entry points of ``group``, sorted by name (the same order on every run)."""
    return sorted(_all_entry_points().select(group=group), key=lambda ep: ep.name)


def plugin_origin(ep: EntryPoint) -> str:
    dist = getattr(ep, "dist", None)
    return f"plugin {dist.name if dist is not None else ep.value.split('.')[0]}"


class Registry(dict[str, T]):
    """``name -> entry`` with :attr:`origins` (``name -> "built-in" | "plugin <dist>"``); a plain dict
    to readers, :meth:`add` refuses a name defined twice and calls ``on_add(name, entry)``."""

    def __init__(
        self,
        kind: str,
        builtins: Mapping[str, T] | None = None,
        on_add: Callable[[str, T], None] | None = None,
    ) -> None:
        super().__init__()
        self.kind = kind
        self.origins: dict[str, str] = {}
        self.on_add = on_add
        for name, value in (builtins or {}).items():
            self.add(name, value)

    def add(self, name: str, value: T, origin: str = BUILT_IN) -> None:
        if name in self:
            raise PluginError(
                f"{self.kind} {name!r} is defined twice: by {self.origins[name]} and by {origin}; "
                "rename one (a plugin's name is its entry point's name)"
            )
        self[name] = value
        self.origins[name] = origin
        if self.on_add is not None:
            self.on_add(name, value)

    def plugins(self) -> Iterator[tuple[str, T]]:
        """(name, entry) of every entry a plugin added."""
        return ((n, v) for n, v in self.items() if self.origins.get(n, BUILT_IN) != BUILT_IN)

    def load_plugins(self, group: str, kind: type) -> None:
        """Add every entry point of ``group`` (each must load to an instance of ``kind``), now, or, when
        this is called while another group loads (a plugin module imported this registry's module),
        as soon as that group is done: a module named by several groups is then complete."""
        _PENDING.append((self, group, kind))
        if _LOADING:
            return
        _LOADING.append(True)
        try:
            while _PENDING:
                reg, grp, knd = _PENDING.pop(0)
                for ep in plugin_entry_points(grp):
                    reg.add(ep.name, _load(ep, grp, knd), plugin_origin(ep))
        finally:
            _LOADING.clear()
            _PENDING.clear()


_PENDING: list[tuple[Registry, str, type]] = []
_LOADING: list[bool] = []


def _load(ep: EntryPoint, group: str, kind: type) -> object:
    """The object entry point ``ep`` names; a :class:`PluginError` naming it if it fails or is no ``kind``."""
    origin = plugin_origin(ep)
    try:
        obj = ep.load()
    except PluginError:
        raise
    except Exception as err:  # noqa: BLE001 — any import error of a plugin: say which one
        raise PluginError(
            f"{origin}: entry point {ep.name} = {ep.value!r} ({group}) failed to load: {err!r}"
        ) from err
    if not isinstance(obj, kind):
        raise PluginError(
            f"{origin}: entry point {ep.name} = {ep.value!r} ({group}) is a {type(obj).__name__}; "
            f"expected a {kind.__module__}.{kind.__name__}"
        )
    return obj
