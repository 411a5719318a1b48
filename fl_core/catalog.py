"""What ``layerbench list`` prints, torch-free: each method's params and defaults (its pydantic schema,
:mod:`fl_core.params`), and the one-line docs of methods and datasets read from their source files
(AST, nothing imported), so listing never loads torch. Plugins (:mod:`fl_core.registry`) are listed
beside the built-ins, marked ``[plugin <distribution>]``."""

from __future__ import annotations

import ast
import importlib.util
import textwrap
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from fl_core.dataset_names import DATASET_NAMES, DATASETS_FOUND
from fl_core.model_names import model_label
from fl_core.model_specs import MODELS, max_positions, num_blocks
from fl_core.params import DECLARED
from fl_core.registry import BUILT_IN

PKG = Path(__file__).resolve().parent
WIDTH = 110


def registered_docs(files: list[Path], decorator: str) -> dict[str, str]:
    """name -> first docstring paragraph of each class/function decorated ``@decorator("name")``."""
    out: dict[str, str] = {}
    for path in files:
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.ClassDef | ast.FunctionDef):
                continue
            for d in node.decorator_list:
                if (
                    isinstance(d, ast.Call)
                    and getattr(d.func, "id", None) == decorator
                    and d.args
                    and isinstance(d.args[0], ast.Constant)
                ):
                    doc = (ast.get_docstring(node) or "").split("\n\n")[0]
                    out[d.args[0].value] = " ".join(doc.split())
    return out


def _default(info: Any) -> str:
    if info.default is PydanticUndefined:
        return "required"
    d = info.default
    if isinstance(d, tuple | list):
        return "[" + ", ".join(map(str, d)) + "]"
    return "null" if d is None else str(d).lower() if isinstance(d, bool) else str(d)


def param_line(params: type[BaseModel]) -> str:
    """``k=2, mode=client (client|server), ...``: every param with its default (and choices)."""
    parts = []
    for name, info in params.model_fields.items():
        choices = get_args(info.annotation) if get_origin(info.annotation) is Literal else ()
        extra = f" ({'|'.join(map(str, choices))})" if choices else ""
        parts.append(f"{name}={_default(info)}{extra}")
    return ", ".join(parts) or "none"


def _model_line(name: str) -> str:
    label = model_label(name)
    note = label[len(name) :].strip(" ()")
    try:
        shape = f"{num_blocks(name)} blocks, {max_positions(name)} positions"
    except Exception as err:  # noqa: BLE001 — weights not installed: say so, list the rest
        shape = f"not installed ({err})"
    return f"{note}; {shape}" if note else shape


def class_doc(target: str) -> str:
    """First docstring paragraph of the class ``"module:Class"`` (a plugin's method), read from its
    source without importing the module (its parent package is imported to find it)."""
    module, _, name = target.partition(":")
    try:
        spec = importlib.util.find_spec(module)
        tree = ast.parse(Path(spec.origin).read_text())  # type: ignore[union-attr, arg-type]
    except (ImportError, AttributeError, TypeError, ValueError, OSError):
        return ""
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == name:
            return " ".join((ast.get_docstring(node) or "").split("\n\n")[0].split())
    return ""


def _marked(doc: str, origin: str) -> str:
    """A plugin's doc, marked with its origin (``[plugin <distribution>]``); a built-in's unchanged."""
    return doc if origin == BUILT_IN else f"[{origin}] {doc}".strip()


def _rows() -> list[tuple[str, str, list[str]]]:
    """(section, name, lines) of every registered method, dataset and model; plugins marked."""
    methods = registered_docs(sorted((PKG / "methods").glob("*.py")), "register")
    datasets = registered_docs([PKG / "data" / "sources.py"], "register_dataset")
    methods |= {n: class_doc(d.method) for n, d in DECLARED.plugins()}
    datasets |= {
        n: " ".join((p.load.__doc__ or "").split("\n\n")[0].split()) for n, p in DATASETS_FOUND.plugins()
    }
    rows = [
        ("methods", n, [_marked(methods.get(n, ""), DECLARED.origins[n]), f"params: {param_line(d.params)}"])
        for n, d in sorted(DECLARED.items())
    ]
    rows += [
        ("datasets", n, [_marked(datasets.get(n, ""), DATASETS_FOUND.origins[n])])
        for n in sorted(DATASET_NAMES)
    ]
    rows += [("models", n, [_marked(_model_line(n), MODELS.origins[n])]) for n in sorted(MODELS)]
    return rows


def listing() -> str:
    """The whole ``layerbench list`` text: sections, one aligned column of names, wrapped docs."""
    rows = _rows()
    col = 2 + max(len(n) for _, n, _ in rows) + 2
    out, section = [], None
    for sec, name, lines in rows:
        if sec != section:
            out.append(f"{sec}:")
            section = sec
        texts = [t for t in lines if t] or [""]
        for i, text in enumerate(texts):
            first = f"  {name}".ljust(col) if i == 0 else " " * col
            out.append(textwrap.fill(text, WIDTH, initial_indent=first, subsequent_indent=" " * col) or first)
    return "\n".join(out)
