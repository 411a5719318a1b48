"""The package's shape, read off its source (AST walk; no import): no import cycle, the layers one
way (cli → sweep / ray → cell → simulator → methods → trainer → model / data / costs → plan), and
short functions. Lazy (function-level) imports count as edges, so none can hide a cycle."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "fl_core"

# Top to bottom; a module may import its own layer or any layer below (never one above).
# The first matching prefix wins.
LAYERS: list[tuple[str, ...]] = [
    ("fl_core.cli",),
    (
        "fl_core.sweep",
        "fl_core.duplicates",
        "fl_core.sweep_plan",
        "fl_core.estimate",
        "fl_core.ray_backend",
        "fl_core.report",
        "fl_core.tune",
        "fl_core.tune_record",
        "fl_core.tune_choice",
        "fl_core.tune_cli",
    ),
    ("fl_core.cell",),
    ("fl_core.simulator", "fl_core.client", "fl_core.validate", "fl_core.flop_estimate"),
    ("fl_core.methods",),
    ("fl_core.trainer", "fl_core.passes", "fl_core.evaluate", "fl_core.evaluate_lm", "fl_core.aggregate"),
    ("fl_core.context", "fl_core.method_view", "fl_core.visits"),
    (
        "fl_core.models",
        "fl_core.data",
        "fl_core.flops",
        "fl_core.cost_record",
        "fl_core.budget_model",
        "fl_core.profiling",
        "fl_core.checkpoint",
        "fl_core.faults",
        "fl_core.lock",
        "fl_core.compact",
        "fl_core.catalog",
        "fl_core.config",
        "fl_core.claims_file",
        "fl_core.params",
        "fl_core.store",
        "fl_core.tracking",
        "fl_core.provenance",
        "fl_core.errors",
    ),
    (
        "fl_core.plan",
        "fl_core.rng",
        "fl_core.metrics",
        "fl_core.diagnostics",
        "fl_core.model_names",
        "fl_core.precision",
        "fl_core.optim",
        "fl_core.model_specs",
        "fl_core.dataset_names",
        "fl_core.llama_costs",
    ),
    ("fl_core.registry", "fl_core.strict"),
]

# Known arrows up, each with the issue that removes it (none left).
ALLOWED_UP: set[tuple[str, str]] = set()
# Known import edges that close a cycle, left to the work that owns the files (remove once gone).
ALLOWED_CYCLE_EDGES: set[tuple[str, str]] = set()

MAX_LINES = 60


def module_name(path: Path, root: Path) -> str:
    rel = path.relative_to(root.parent).with_suffix("")
    parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
    return ".".join(parts)


def _is_type_checking(node: ast.If) -> bool:
    t = node.test
    return (isinstance(t, ast.Name) and t.id == "TYPE_CHECKING") or (
        isinstance(t, ast.Attribute) and t.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST, package: str, modules: set[str]) -> set[str]:
    """fl_core modules imported anywhere in ``tree`` except under ``if TYPE_CHECKING:``."""
    out: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name in modules)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative import
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + [base])
            for a in node.names:
                sub = f"{base}.{a.name}"
                if sub in modules:
                    out.add(sub)
                elif base in modules:
                    out.add(base)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return out


def import_graph(root: Path = ROOT) -> dict[str, set[str]]:
    files = {module_name(p, root): p for p in sorted(root.rglob("*.py"))}
    files.pop(root.name)  # the (empty) top package is no layer
    graph = {}
    for name, path in files.items():
        package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        src = path.read_text()
        graph[name] = _imports(ast.parse(src), package, set(files)) - {name}
        if path.name == "__init__.py" and "pkgutil.iter_modules" in src:  # imports its modules by discovery
            graph[name] |= {m for m in files if m.rsplit(".", 1)[0] == name}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a path ``[a, b, ..., a]``, or None."""
    state: dict[str, int] = {}  # 1: on the stack, 2: done
    stack: list[str] = []

    def dfs(n: str) -> list[str] | None:
        state[n] = 1
        stack.append(n)
        for m in sorted(graph.get(n, ())):
            if state.get(m) == 1:
                return stack[stack.index(m) :] + [m]
            if m not in state and (c := dfs(m)):
                return c
        stack.pop()
        state[n] = 2
        return None

    for n in sorted(graph):
        if n not in state and (c := dfs(n)):
            return c
    return None


def layer_of(module: str) -> int:
    for i, prefixes in enumerate(LAYERS):
        if any(module == p or module.startswith(p + ".") for p in prefixes):
            return i
    raise AssertionError(f"{module} is in no layer: add it to LAYERS in {__file__}")


def arrows_up(graph: dict[str, set[str]]) -> list[tuple[str, str]]:
    return sorted(
        (a, b)
        for a, deps in graph.items()
        for b in deps
        if layer_of(b) < layer_of(a) and (a, b) not in ALLOWED_UP
    )


def long_functions(root: Path = ROOT) -> dict[str, int]:
    out = {}
    for path in sorted(root.rglob("*.py")):
        mod = module_name(path, root)
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = node.end_lineno - node.lineno + 1
                if n > MAX_LINES:
                    out[f"{mod}.{node.name}"] = n
    return out


def test_graph_sees_lazy_imports_and_skips_type_checking():
    src = "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import fl_core.b\ndef f():\n    from fl_core import c\n"
    assert _imports(ast.parse(src), "fl_core", {"fl_core", "fl_core.b", "fl_core.c"}) == {"fl_core.c"}


def test_graph_sees_discovered_modules():
    graph = import_graph()
    assert {"fl_core.methods.lora", "fl_core.methods.tiny", "fl_core.methods.base"} <= graph[
        "fl_core.methods"
    ]
    assert "fl_core.params.tiny" in graph["fl_core.params"]


def test_find_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


def test_no_import_cycle():
    graph = import_graph()
    for a, b in ALLOWED_CYCLE_EDGES:
        graph.get(a, set()).discard(b)
    assert find_cycle(graph) is None


def test_layers_point_down():
    assert arrows_up(import_graph()) == []


@pytest.mark.parametrize("name", sorted(set(import_graph())))
def test_every_module_has_a_layer(name):
    layer_of(name)


def test_functions_are_short():
    too_long = long_functions()
    assert too_long == {}, f"functions over {MAX_LINES} lines: {too_long}"


def test_no_method_writes_a_cost_record():
    """Extra passes go through :mod:`fl_core.passes` (or the trainer, for local steps): no method module
    builds a ``CostRecord``, counts a pass, adds to the run's cost log or calls the trainer loop itself."""
    forbidden = {"CostRecord", "add_pass", "costs", "cost_record", "step_flops"}
    hits = []
    for path in sorted((ROOT / "methods").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            name = node.attr if isinstance(node, ast.Attribute) else getattr(node, "id", None)
            if isinstance(node, ast.ImportFrom):
                names = {a.name for a in node.names}
                if node.module in ("fl_core.cost_record", "fl_core.flops") and names & forbidden:
                    hits.append(f"{path.name}:{node.lineno} imports {names & forbidden}")
                if node.module == "fl_core.trainer" and "train" in names:
                    hits.append(f"{path.name}:{node.lineno} imports fl_core.trainer.train")
            elif name in forbidden:
                hits.append(f"{path.name}:{node.lineno} uses {name}")
    assert not hits, "methods must record extra passes through fl_core.passes.ExtraPass:\n" + "\n".join(hits)
