"""What the scripts in ``benchmarks/`` share: where they write, the cells they time, the sections of
``results/perf/README.md`` (each script replaces only its own), and the one way a script swaps an
``fl_core`` internal for a measurement. Light to import (no torch, no pandas): ``vs_flower.py``'s Ray
actors import it too."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from fl_core.config import DataConfig, FLConfig, GridConfig, MethodSpec, RunConfig
from fl_core.provenance import git_revision

# -- where results go ------------------------------------------------------------------------------
OUT_ENV = "LAYERBENCH_PERF_DIR"  # tests point it at a temp dir


def out_dir() -> Path:
    """``results/perf`` (or ``$LAYERBENCH_PERF_DIR``), created."""
    out = Path(os.environ.get(OUT_ENV, "results/perf"))
    out.mkdir(parents=True, exist_ok=True)
    return out


# -- the cells a benchmark times -------------------------------------------------------------------
#: one round of all 10 clients, batch 16 x 32 tokens, no prefix cache (what the ratio benchmarks time)
BENCH_FL: dict[str, Any] = {
    "num_clients": 10,
    "clients_per_round": 10,
    "rounds": 1,
    "batch_size": 16,
    "max_len": 32,
    "prefix_cache": False,
}


def run_config(
    method: str = "full",
    *,
    dataset: str = "bbc_news",
    alpha: float | str = "iid",
    model: str = "minilm-l6",
    params: dict[str, Any] | None = None,
    data: dict[str, Any] | None = None,
    **fl: Any,
) -> RunConfig:
    """A seed-0 cell of ``model`` on ``dataset``: :data:`BENCH_FL` with the ``fl`` keywords changed;
    ``data`` gives the DataConfig fields (default ``min_partition_size=1``: tiny IID clients allowed)."""
    return RunConfig(
        dataset=dataset,
        alpha=alpha,
        method=MethodSpec(name=method, params=params or {}),
        seed=0,
        model=model,
        fl=FLConfig(**(BENCH_FL | fl)),
        data=DataConfig(**({"min_partition_size": 1} if data is None else data)),
    )


def with_fl(cell: RunConfig, **fl: Any) -> RunConfig:
    """``cell`` with these ``fl`` fields changed, nothing else (e.g. its fp32 twin)."""
    return cell.model_copy(update={"fl": cell.fl.model_copy(update=fl)})


def cells_of(grid: GridConfig, label: str | None = None, **fields: Any) -> list[RunConfig]:
    """The grid's cells of method ``label`` (a display label) with these values (dataset, alpha, seed)."""
    return [
        c
        for c in grid.cells()
        if (label is None or c.method.display == label) and all(getattr(c, k) == v for k, v in fields.items())
    ]


# -- swapping an fl_core internal for a measurement ------------------------------------------------
_MISSING = object()


@contextlib.contextmanager
def patch_internals(*swaps: tuple[object, str, Any]) -> Iterator[None]:
    """Each ``(obj, attr, value)`` set for the duration, then put back (an attribute ``obj`` did not hold
    itself, e.g. a bound method, is deleted again). ``fl_core`` has no hook for these: a benchmark times
    the real code path with one piece swapped or wrapped, so every such swap goes through here."""
    saved = [(obj, attr, vars(obj).get(attr, _MISSING)) for obj, attr, _ in swaps]
    try:
        for obj, attr, value in swaps:
            setattr(obj, attr, value)
        yield
    finally:
        for obj, attr, old in reversed(saved):
            if old is _MISSING:
                delattr(obj, attr)
            else:
                setattr(obj, attr, old)


# -- the run's facts and the README sections ------------------------------------------------------
HEADER = [
    "# Simulator speed and memory (`make perf`, `make perf-flower`)",
    "",
    "Every figure is a ratio of timings taken side by side in one run; each section names its run.",
    "",
]


def stamp() -> str:
    """``git `<revision>`; <date time>``: the end of every section's run line."""
    return f"git `{git_revision()}`; {time.strftime('%Y-%m-%d %H:%M')}"


def torch_run() -> str:
    """CPUs, torch version and threads, then :func:`stamp`."""
    import torch

    return f"{os.cpu_count()} CPUs, torch {torch.__version__}, {torch.get_num_threads()} threads; {stamp()}"


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


def publish(name: str, *blocks: str, seconds: float | None = None, out: Path | None = None) -> None:
    """Write the ``## <name>`` section of ``<out>/README.md`` (default :func:`out_dir`)."""
    write_section((out or out_dir()) / "README.md", name, section(name, *blocks, seconds=seconds))
