"""``results/perf/README.md`` is shared by several benchmarks: each replaces only its own section."""

from __future__ import annotations

from pathlib import Path

HEADER = [
    "# Simulator speed and memory (`make perf`, `make perf-flower`)",
    "",
    "Every figure is a ratio of timings taken side by side in one run; each section names its run.",
    "",
]


def section(name: str, *blocks: str, seconds: float | None = None) -> list[str]:
    """A ``## <name>`` section (its run time in the heading when given): the blocks, blank-line separated."""
    head = f"## {name}" + ("" if seconds is None else f" ({seconds:.0f} s)")
    return [head, *[line for block in blocks for line in ("", block)], ""]


def write_section(path: Path, name: str, section: list[str]) -> None:
    """Replace (or append) the ``## <name>`` section; other sections are kept."""
    lines = path.read_text().rstrip("\n").split("\n") if path.exists() else list(HEADER)
    while section and not section[-1]:  # one blank line between sections, however the section ends
        section = section[:-1]
    is_head = lambda ln: ln == f"## {name}" or ln.startswith(f"## {name} ")  # noqa: E731
    start = next((i for i, ln in enumerate(lines) if is_head(ln)), None)
    if start is None:
        lines = [*lines, "", *section] if lines[-1] else [*lines, *section]
    else:
        end = next((j for j in range(start + 1, len(lines)) if lines[j].startswith("## ")), len(lines))
        lines = [*lines[:start], *section, *([""] if end < len(lines) else []), *lines[end:]]
    path.write_text("\n".join(lines).rstrip("\n") + "\n")
