"""``results/perf/README.md`` is shared by several benchmarks: each replaces only its own section."""

from __future__ import annotations

import os
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


def host() -> str:
    """The CPU count and model, its vector ISA and whether it has native bf16 (AVX512-BF16 / AMX-BF16)."""
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        return f"{os.cpu_count()} CPUs"
    model = next(
        (ln.split(":", 1)[1].strip() for ln in info.splitlines() if ln.startswith("model name")), "?"
    )
    flags = set(next((ln.split(":", 1)[1].split() for ln in info.splitlines() if ln.startswith("flags")), []))
    bf16 = [f.upper().replace("_", "-") for f in ("avx512_bf16", "amx_bf16") if f in flags]
    isa = "AVX512" if "avx512f" in flags else "AVX2" if "avx2" in flags else "no AVX2"
    native = f"{' + '.join(bf16)} present" if bf16 else "no AVX512-BF16 (bf16 is emulated)"
    return f"{os.cpu_count()} x {model} ({isa}, {native})"


def load() -> str:
    """The 1-, 5- and 15-minute load averages (above the CPU count: other jobs shared the cores)."""
    return "/".join(f"{x:.1f}" for x in os.getloadavg())
