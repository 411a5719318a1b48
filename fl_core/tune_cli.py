"""The ``layerbench tune`` subcommand: its parser and its command. Optuna (and the tuning code,
:mod:`fl_core.tune`, :mod:`fl_core.tune_record`) load only when the command runs, so building the
CLI's parser for any other command never pays for them."""

from __future__ import annotations

import argparse

# fl_core.tune.DEFAULT_LRS as the help shows it (tests/test_cli.py checks the two agree).
DEFAULT_LRS_HELP = "3e-05,0.0001,0.0003,0.001,0.003"


def add_parser(sub) -> None:
    """The ``layerbench tune`` subcommand (registered by ``fl_core.cli``)."""
    t = sub.add_parser("tune", help="choose each method's lr per dataset on the validation split (Optuna)")
    t.add_argument("config")
    t.add_argument("--alpha", help="the alpha to tune at (default: the grid's smallest)")
    t.add_argument("--seed", type=int, help="default: the grid's first seed")
    t.add_argument("--lrs", help=f"comma-separated lr grid (default: {DEFAULT_LRS_HELP})")
    t.add_argument(
        "--max-extend",
        type=int,
        default=2,
        help="steps the lr grid may grow past an edge holding the best lr",
    )
    t.add_argument("--out", help="default: the grid's `tuned` path, else configs/tuned/<grid name>.yaml")
    t.add_argument("--storage", help="an Optuna storage URL (default: sqlite under <output_dir>/tune/)")
    t.add_argument("--dataset", action="append", help="only these datasets (repeatable)")
    t.add_argument("--method", action="append", help="only these method labels or names (repeatable)")
    t.set_defaults(fn=cmd_tune)


def cmd_tune(args: argparse.Namespace) -> int:
    from pathlib import Path

    from fl_core.tune import DEFAULT_LRS, TuneSpec, hardest_alpha
    from fl_core.tune_record import run_tune
    from fl_core.validate import load_grid, read_yaml

    raw_tuned = load_grid(args.config, {"tuned": None})
    grid_tuned = read_yaml(args.config).get("tuned")
    alpha = (
        hardest_alpha(raw_tuned)
        if args.alpha is None
        else (args.alpha if args.alpha == "iid" else float(args.alpha))
    )
    lrs = tuple(float(x) for x in args.lrs.split(",")) if args.lrs else DEFAULT_LRS
    seed = raw_tuned.seeds[0] if args.seed is None else args.seed
    spec = TuneSpec(alpha=alpha, seed=seed, lrs=lrs, max_extend=args.max_extend)
    out = Path(args.out or grid_tuned or f"configs/tuned/{raw_tuned.name}.yaml")
    path = run_tune(raw_tuned, args.config, spec, out, args.storage, args.dataset, args.method)
    print(f"tuned: {path} (trials: {path.with_name(path.stem + '_trials.csv')})")
    return 0
