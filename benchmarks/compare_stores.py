"""Are two results stores the same numbers? Cell by cell (matched by label, dataset, alpha, seed), the
``rounds.csv`` and ``costs.csv`` tables compared as text, i.e. bitwise; wall times are left out, and so
are rows and columns only one side has (e.g. the ``round = -1`` evaluation a later revision added).

The check behind a behaviour-preserving refactor: run one grid slice at the old and the new revision
(a ``git worktree`` of the old one, ``PYTHONPATH`` pointing at it) into two stores, then::

    python benchmarks/compare_stores.py /tmp/before /tmp/after      # exit 1 if any cell differs
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd

SKIP = {"wall_s"}  # timings differ run to run


def cells(store: Path) -> dict[tuple, Path]:
    out = {}
    for d in sorted((store / "runs").iterdir()):
        r = json.loads((d / "result.json").read_text())
        out[(r["label"], r["dataset"], str(r["alpha"]), r["seed"])] = d
    return out


def same_table(a: Path, b: Path) -> tuple[bool, list[str]]:
    """(equal on shared rows and columns, the columns that differ); a missing table equals a missing one."""
    if not a.exists() or not b.exists():
        return a.exists() == b.exists(), []
    x, y = pd.read_csv(a, dtype=str).fillna(""), pd.read_csv(b, dtype=str).fillna("")
    if "round" in x and "round" in y:  # rows only one side logs (e.g. round -1) are not compared
        x, y = x[x["round"].isin(y["round"])], y[y["round"].isin(x["round"])]
    cols = [c for c in x.columns if c in y.columns and c not in SKIP]
    if len(x) != len(y):
        return False, ["(row count)"]
    diff = [c for c in cols if not x[c].reset_index(drop=True).equals(y[c].reset_index(drop=True))]
    return not diff, diff


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("before", type=Path)
    ap.add_argument("after", type=Path)
    a = ap.parse_args()
    before, after = cells(a.before), cells(a.after)
    bad = 0
    for key, d in before.items():
        if key not in after:
            print(f"{key}: only in {a.before}")
            bad += 1
            continue
        verdict = []
        for table in ("rounds.csv", "costs.csv"):
            ok, diff = same_table(d / table, after[key] / table)
            verdict.append(f"{table} {'identical' if ok else 'DIFFERS in ' + ', '.join(diff)}")
            bad += not ok
        print(f"{' '.join(map(str, key)):40s} {'; '.join(verdict)}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
