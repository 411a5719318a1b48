"""The ``layerbench tune`` subcommand: its parser and its command. Optuna (and the tuning code,
:mod:`fl_core.tune`, :mod:`fl_core.tune_record`) load only when the command runs, so building the
CLI's parser for any other command never pays for them."""

from __future__ import annotations

import argparse

# fl_core.tune.DEFAULT_LRS as the help shows it (tests/test_cli.py checks the two agree).
DEFAULT_LRS_HELP = "3e-05,0.0001,0.0003,0.001,0.003"


def add_parser(sub) -> None:
    """The ``layerbench tune`` subcommand (registered by ``fl_core.cli``)."""
    t = sub.add_parser(
        "tune", help="choose each method's lr per dataset and partition on the validation split (Optuna)"
    )
    t.add_argument("config")
    t.add_argument(
        "--alpha", action="append", help="only these partitions (repeatable or comma-separated; default: all)"
    )
    t.add_argument(
        "--seeds",
        help="comma-separated tuning seeds, >= 2 (default: the grid's tune_seeds, else its first two seeds)",
    )
    t.add_argument("--lrs", help=f"comma-separated lr grid (default: {DEFAULT_LRS_HELP})")
    t.add_argument(
        "--center-from",
        help="an earlier tuned file: each method's grid is the 3 lrs around its choice there (lr/3, lr, 3 lr)",
    )
    t.add_argument(
        "--center-alias",
        action="append",
        default=[],
        metavar="NEW=OLD",
        help="centre label NEW on OLD's choice in --center-from (a method renamed since, or one whose own earlier choice is no fair prior; repeatable)",
    )
    t.add_argument(
        "--max-extend",
        type=int,
        default=2,
        help="steps the lr grid may grow past an edge holding the winner or the chosen lr",
    )
    t.add_argument(
        "--jobs",
        type=int,
        default=1,
        help="groups tuned at once, each in its own process with the grid's threads_per_cell threads "
        "(e.g. 2 on 2 cores with threads_per_cell: 1)",
    )
    t.add_argument("--no-prune", action="store_true", help="no MedianPruner (default: second half only)")
    t.add_argument("--dry-run", action="store_true", help="print the studies and the cost; run nothing")
    t.add_argument("--out", help="default: the grid's `tuned` path, else configs/tuned/<grid name>.yaml")
    t.add_argument("--storage", help="an Optuna storage URL (default: sqlite under <output_dir>/tune/)")
    t.add_argument("--dataset", action="append", help="only these datasets (repeatable)")
    t.add_argument("--method", action="append", help="only these method labels or names (repeatable)")
    t.set_defaults(fn=cmd_tune)


def _alphas(values: list[str] | None) -> tuple | None:
    if not values:
        return None
    raw = [x for v in values for x in v.split(",") if x]
    return tuple(x if x == "iid" or x.startswith("natural:") else float(x) for x in raw)


def spec_from_args(args: argparse.Namespace, grid):
    """The :class:`fl_core.tune.TuneSpec` the command line asks for."""
    from fl_core.tune import DEFAULT_LRS, TuneSpec

    seeds = tuple(int(s) for s in args.seeds.split(",")) if args.seeds else tuple(grid.tuning_seeds())
    return TuneSpec(
        seeds=seeds,
        alphas=_alphas(args.alpha),
        lrs=tuple(float(x) for x in args.lrs.split(",")) if args.lrs else DEFAULT_LRS,
        max_extend=args.max_extend,
        prune=not args.no_prune,
        center=_center(args) if args.center_from else {},
    )


def _center(args: argparse.Namespace) -> dict:
    """The centring record's choices, with ``--center-alias NEW=OLD`` copying OLD's lr to NEW (old
    one-lr-per-dataset format only, as the v1 record has)."""
    from fl_core.config import ConfigError, read_tuned

    chosen = {d: dict(per) for d, per in read_tuned(args.center_from)["chosen"].items()}
    for alias in args.center_alias:
        new, sep, old = alias.partition("=")
        if not sep:
            raise ConfigError(f"--center-alias {alias!r}: expected NEW=OLD")
        for per in chosen.values():
            if old in per and not isinstance(per[old], dict):
                per[new] = per[old]
    return chosen


def cmd_tune(args: argparse.Namespace) -> int:
    from pathlib import Path

    from fl_core.tune import plan
    from fl_core.tune_record import remaining, run_tune
    from fl_core.validate import load_grid, read_yaml

    grid = load_grid(args.config, {"tuned": None})
    spec = spec_from_args(args, grid)
    grid_tuned = read_yaml(args.config).get("tuned")
    out = Path(args.out or grid_tuned or f"configs/tuned/{grid.name}.yaml")
    if args.dry_run:
        print(plan(grid, spec))
        if out.is_file():
            print(remaining(grid, spec, out, args.jobs))
        return 0
    path = run_tune(grid, args.config, spec, out, args.storage, args.dataset, args.method, jobs=args.jobs)
    print(f"tuned: {path} (trials: {path.with_name(path.stem + '_trials.csv')})")
    return 0
