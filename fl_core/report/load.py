"""Read the local results store into pandas, for the report and for notebooks.

Two ways in:

- ``load_results(root)``: every verified cell under ``<root>/runs/`` (what a notebook pointed at a
  results directory wants);
- ``load_results(root, grid=grid)``: exactly the cells of a grid, in the grid's order, with the
  cells that have no verified result yet as ``status == "missing"`` (what the report wants: a cell
  that did not run is shown, never silently dropped).

Only the raw JSON/CSV files are read (``config.json`` is not re-validated), so a store written by an
older version of the config schema still loads.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from fl_core.compact import store_or_compact
from fl_core.config import MethodSpec
from fl_core.metrics import SUMMARY
from fl_core.report.partitions import sort_partitions
from fl_core.store import ResultStore

if TYPE_CHECKING:
    from fl_core.config import GridConfig

log = logging.getLogger(__name__)

KEYS = ["dataset", "alpha", "label"]
#: summary fields every cell row has (NaN where the cell did not record them)
SUMMARY_FIELDS = list(SUMMARY)
#: where a peak-memory figure may live, first match wins (summary / info keys, then costs.csv columns)
PEAK_MEMORY_KEYS = ["peak_memory_bytes", "peak_mem_bytes", "client_peak_memory_bytes", "peak_memory"]


def alpha_str(a: Any) -> str:
    """The one spelling of a partition used everywhere in the report (``0.1``, ``1.0``, ``iid``,
    ``natural:movie_name``; :mod:`fl_core.report.partitions`)."""
    if isinstance(a, str):
        with contextlib.suppress(ValueError):
            return str(float(a))
        return a
    return str(float(a))


def params_str(params: dict[str, Any] | None) -> str:
    """``k=2, mode=server``: a method's key params, sorted, for table rows."""
    return ", ".join(f"{k}={v}" for k, v in sorted((params or {}).items()))


def _read_json(p: Path) -> dict[str, Any]:
    try:
        return json.loads(p.read_text())
    except (OSError, ValueError):
        return {}


def _read_csv(p: Path) -> pd.DataFrame:
    if not p.is_file():
        return pd.DataFrame()
    with contextlib.suppress(pd.errors.EmptyDataError):
        return pd.read_csv(p)
    return pd.DataFrame()


def _peak_memory(result: dict[str, Any], costs: pd.DataFrame | None) -> float:
    for where in (result.get("summary", {}), result.get("info", {})):
        for k in PEAK_MEMORY_KEYS:
            if isinstance(where.get(k), int | float):
                return float(where[k])
    if costs is not None and not costs.empty:
        cols = [c for c in costs.columns if "peak" in c and "mem" in c]
        if cols:
            return float(costs[cols[0]].max())
    return float("nan")


def _cell_row(cfg: dict[str, Any], result: dict[str, Any], h: str, run_dir: Path) -> dict[str, Any]:
    spec = cfg.get("method", {})
    label = MethodSpec(**spec).display if spec else result.get("label", "?")
    info = result.get("info", {}) or {}
    summary = result.get("summary", {}) or {}
    part = run_dir / "partition.json"
    costs = _read_csv(run_dir / "costs.csv") if result.get("status") in ("ok", "diverged") else None
    row = {
        "dataset": str(cfg.get("dataset", result.get("dataset"))),
        "alpha": alpha_str(cfg.get("alpha", result.get("alpha"))),
        "label": label,
        "method": spec.get("name", result.get("method")),
        "params": params_str(spec.get("params")),
        "params_json": json.dumps(spec.get("params", {}), sort_keys=True),
        "seed": int(cfg.get("seed", result.get("seed", -1))),
        "status": result.get("status", "unknown"),
        "reason": str(result.get("reason", "") or ""),
        "config_hash": h,
        "model": cfg.get("model", result.get("model")),
        "val_fraction": float((cfg.get("data") or {}).get("val_fraction", 0.0) or 0.0),
        "final_window": int(
            (cfg.get("fl") or {}).get("final_window", 1) or 1
        ),  # final_* = mean of the last N evals
        "personal_eval": info.get("personal_eval", ""),
        "model_is_random": info.get("model_is_random"),
        "num_blocks": info.get("num_blocks"),
        "family": info.get("family", ""),  # the method's declared family (older stores: none)
        "wall_s": float(info.get("wall_s") or "nan"),  # the cell's wall time, every attempt
        "git_revision": result.get("git_revision", ""),
        "finished_at": str(result.get("finished_at", "")),
        # what else the cell ran under (model, fl, data): cells of different grids / code versions differ here
        "setting": hashlib.sha256(
            json.dumps({k: cfg.get(k) for k in ("model", "fl", "data")}, sort_keys=True).encode()
        ).hexdigest()[:8],
        # same seed = same partition; pairing checks this fingerprint
        "partition_sha": hashlib.sha256(part.read_bytes()).hexdigest()[:16] if part.is_file() else "",
        "peak_memory_bytes": _peak_memory(result, costs),
        "test_majority_share": float(info.get("test_majority_share") or "nan"),
        **_label_shares(part),
    }
    for k in SUMMARY_FIELDS:
        v = summary.get(k)
        row[k] = float(v) if isinstance(v, int | float) else np.nan
    return row


def _label_shares(part: Path) -> dict[str, float]:
    """``num_labels`` and ``train_majority_share`` (the most frequent label's share of the pooled
    client training rows) from a cell's ``partition.json``; NaN where it has none."""
    counts = (
        np.asarray(_read_json(part).get("client_label_counts") or [], dtype=float) if part.is_file() else []
    )
    if np.ndim(counts) != 2 or not np.sum(counts):
        return {"num_labels": np.nan, "train_majority_share": np.nan}
    pooled = counts.sum(axis=0)
    return {"num_labels": float(len(pooled)), "train_majority_share": float(pooled.max() / pooled.sum())}


def _missing_row(cell) -> dict[str, Any]:
    return {
        "dataset": cell.dataset,
        "alpha": alpha_str(cell.alpha),
        "label": cell.method.display,
        "method": cell.method.name,
        "params": params_str(cell.method.params),
        "params_json": json.dumps(cell.method.params, sort_keys=True),
        "seed": cell.seed,
        "status": "missing",
        "reason": "not run yet",
        "config_hash": cell.hash(),
        "model": cell.model,
        "val_fraction": cell.data.val_fraction,
        "final_window": cell.fl.final_window,
    }


@dataclass
class Results:
    """The cells of a results store as a table, plus lazy access to each cell's CSV/JSON files.

    ``cells``: one row per cell (dataset, alpha, label, method, params, seed, status, reason,
    config_hash, the summary numbers, ...). ``labels`` / ``datasets`` / ``alphas``: display order.
    """

    root: Path
    cells: pd.DataFrame
    labels: list[str]
    datasets: list[str]
    alphas: list[str]
    _cache: dict[tuple[str, str], Any] = field(default_factory=dict, repr=False)

    # -- per-cell files -----------------------------------------------------------------------
    def run_dir(self, config_hash: str) -> Path:
        return ResultStore(self.root).path(config_hash)

    def table(self, config_hash: str, name: str) -> pd.DataFrame:
        """``rounds`` / ``costs`` / ``selections`` of one cell (empty if absent)."""
        key = (config_hash, name)
        if key not in self._cache:
            self._cache[key] = _read_csv(self.run_dir(config_hash) / f"{name}.csv")
        return self._cache[key]

    def partition(self, config_hash: str) -> dict[str, Any]:
        return _read_json(self.run_dir(config_hash) / "partition.json")

    def result(self, config_hash: str) -> dict[str, Any]:
        return _read_json(self.run_dir(config_hash) / "result.json")

    # -- filtering ----------------------------------------------------------------------------
    def filter(
        self,
        dataset: str | None = None,
        alpha: Any = None,
        label: str | Iterable[str] | None = None,
        method: str | None = None,
        seed: int | None = None,
        status: str | None = None,
    ) -> Results:
        """A view on a subset of the cells (same store)."""
        c = self.cells
        if dataset is not None:
            c = c[c.dataset == dataset]
        if alpha is not None:
            c = c[c.alpha == alpha_str(alpha)]
        if label is not None:
            c = c[c.label.isin([label] if isinstance(label, str) else list(label))]
        if method is not None:
            c = c[c.method == method]
        if seed is not None:
            c = c[c.seed == seed]
        if status is not None:
            c = c[c.status == status]
        keep = set(c.label)
        return Results(
            self.root,
            c.reset_index(drop=True),
            [x for x in self.labels if x in keep],
            [d for d in self.datasets if d in set(c.dataset)],
            [a for a in self.alphas if a in set(c.alpha)],
            self._cache,
        )

    def ok(self) -> pd.DataFrame:
        return self.cells[self.cells.status == "ok"]

    def long(self, name: str, status: tuple[str, ...] = ("ok",)) -> pd.DataFrame:
        """One CSV (``rounds``, ``costs``, ``selections``) of every cell with ``status``, stacked, with the
        cell's dataset, alpha, label, method, seed and config_hash as leading columns."""
        parts = []
        for _, r in self.cells[self.cells.status.isin(status)].iterrows():
            t = self.table(r.config_hash, name)
            if t.empty:
                continue
            t = t.copy()
            for i, k in enumerate(["dataset", "alpha", "label", "method", "seed", "config_hash"]):
                t.insert(i, k, r[k])
            parts.append(t)
        return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()

    def rounds(self, **filters) -> pd.DataFrame:
        return (self.filter(**filters) if filters else self).long("rounds")

    def method_params(self, label: str) -> dict[str, Any]:
        rows = self.cells[self.cells.label == label]
        return json.loads(rows.params_json.iloc[0]) if len(rows) else {}


def _canonical_order(labels: Iterable[str]) -> list[str]:
    first = ["full", "head"]
    labels = sorted(set(labels))
    return [x for x in first if x in labels] + [x for x in labels if x not in first]


_Rows = tuple[list[dict], list[str], list[str], list[str]]  # rows, labels, datasets, alphas


def load_results(root: str | Path, grid: GridConfig | None = None, latest_only: bool = True) -> Results:
    """Load the store under ``root`` (``<root>/runs/<hash>/``); with ``grid``, only its cells, in its order.
    Without a grid and without raw runs, the compact copy ``<root>/runs.csv.gz`` of a published grid is
    loaded instead (:mod:`fl_core.compact`).

    Without a grid, a store can hold several cells for one (dataset, alpha, label, seed): older code
    versions or other grids writing to the same directory (their ``setting`` column differs). With
    ``latest_only`` (default) only the most recently finished of them is kept (a warning says how many
    were dropped); pass False to get them all and filter on ``setting`` yourself."""
    root = Path(root) if grid is not None else store_or_compact(root)
    store = ResultStore(root)
    if grid is not None:
        rows, labels, datasets, alphas = _grid_rows(store, grid)
    else:
        rows, labels, datasets, alphas = _store_rows(store, root, latest_only)
    cells = _ordered(_with_columns(pd.DataFrame(rows)), labels, datasets, alphas)
    return Results(root, cells.reset_index(drop=True), labels, datasets, alphas)


def _grid_rows(store: ResultStore, grid: GridConfig) -> _Rows:
    """One row per cell of ``grid``, in its order (a cell not in the store, or corrupt: ``missing``)."""
    rows = []
    for cell in grid.cells():
        h = cell.hash()
        if not store.verify(h):
            rows.append(_missing_row(cell))
            continue
        d = store.path(h)
        rows.append(_cell_row(_read_json(d / "config.json"), _read_json(d / "result.json"), h, d))
    labels = [m.display for m in grid.methods]
    datasets = list(dict.fromkeys(grid.datasets))
    alphas = list(dict.fromkeys(alpha_str(a) for a in grid.alphas))
    return rows, labels, datasets, alphas


def _store_rows(store: ResultStore, root: Path, latest_only: bool) -> _Rows:
    """One row per verified run of the store (with ``latest_only``: the newest per dataset, alpha,
    label and seed), labels in canonical order, datasets and alphas sorted."""
    rows = []
    for d in sorted(store.runs.glob("[!.]*")) if store.runs.is_dir() else []:
        if d.is_dir() and store.verify(d.name):
            rows.append(_cell_row(_read_json(d / "config.json"), _read_json(d / "result.json"), d.name, d))
    cells = pd.DataFrame(rows)
    if rows and latest_only:
        rows = _latest(cells, root)
        cells = pd.DataFrame(rows)
    labels = _canonical_order(cells.label) if rows else []
    datasets = sorted(set(cells.dataset)) if rows else []
    alphas = sort_partitions(cells.alpha) if rows else []
    return rows, labels, datasets, alphas


def _latest(cells: pd.DataFrame, root: Path) -> list[dict]:
    """The rows of ``cells``, one per (dataset, alpha, label, seed): the last finished (on a tie, an ok
    one); a warning counts those left out."""
    cells["_ok"] = cells.status == "ok"
    cells = cells.sort_values(["finished_at", "_ok"], kind="stable")
    keep = ~cells.duplicated(["dataset", "alpha", "label", "seed"], keep="last")
    if (~keep).any():
        log.warning(
            "%d older cells in %s repeat a (dataset, alpha, label, seed) of a newer one and are "
            "left out (load_results(..., latest_only=False) keeps them)",
            int((~keep).sum()),
            root,
        )
    return cells[keep].drop(columns="_ok").to_dict("records")


def _with_columns(cells: pd.DataFrame) -> pd.DataFrame:
    """``cells`` with every column the report reads (NaN or "" where a cell has none)."""
    if cells.empty:
        cells = pd.DataFrame(
            columns=[
                "dataset",
                "alpha",
                "label",
                "method",
                "params",
                "params_json",
                "seed",
                "status",
                "reason",
                "config_hash",
                *SUMMARY_FIELDS,
            ]
        )
    for k in [
        *SUMMARY_FIELDS,
        "peak_memory_bytes",
        "test_majority_share",
        "num_labels",
        "train_majority_share",
    ]:
        if k not in cells:
            cells[k] = np.nan
    for k in ("reason", "personal_eval", "partition_sha", "params", "family"):
        cells[k] = cells[k].fillna("") if k in cells else ""
    return cells


def _ordered(cells: pd.DataFrame, labels: list[str], datasets: list[str], alphas: list[str]) -> pd.DataFrame:
    """``cells`` sorted by dataset, alpha and label (in the orders given), then seed."""
    order = {lab: i for i, lab in enumerate(labels)}
    cells["_d"] = cells.dataset.map({d: i for i, d in enumerate(datasets)})
    cells["_a"] = cells.alpha.map({a: i for i, a in enumerate(alphas)})
    cells["_m"] = cells.label.map(order)
    return cells.sort_values(["_d", "_a", "_m", "seed"], kind="stable").drop(columns=["_d", "_a", "_m"])
