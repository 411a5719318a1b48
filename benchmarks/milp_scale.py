"""Time selective's exact MILP (HiGHS) at decoder depth: L blocks x N clients per round, random
gradient-norm scores, budget b (the ``selective`` method's ``solve_selection``). Prints one line per
(L, clients, b): median solve time over seeds and whether HiGHS proved optimality (else fallback)."""

from __future__ import annotations

import argparse
import time

import numpy as np

from fl_core.methods.selective import solve_selection


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--blocks", type=int, nargs="+", default=[6, 30])
    ap.add_argument("--clients", type=int, nargs="+", default=[4, 10])
    ap.add_argument("--seeds", type=int, default=5)
    args = ap.parse_args()
    for L in args.blocks:
        for n in args.clients:
            for b in sorted({2, max(1, L // 5)}):
                times, solvers = [], set()
                for seed in range(args.seeds):
                    scores = np.random.default_rng(seed).gamma(2.0, 1.0, (n, L))
                    info: dict = {}
                    t = time.perf_counter()
                    solve_selection(scores, np.full(n, b), 0.1, info=info)
                    times.append(time.perf_counter() - t)
                    solvers.add(info.get("solver"))
                print(
                    f"L={L:2d} clients={n:2d} b={b:2d}: median {np.median(times) * 1e3:.1f} ms "
                    f"(max {max(times) * 1e3:.1f} ms), solver {sorted(solvers)}"
                )


if __name__ == "__main__":
    main()
