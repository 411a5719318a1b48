"""``layerbench``: sweep a grid, run one cell, list what is registered, rebuild the report."""

from __future__ import annotations

import argparse
import logging
import os
import sys

from fl_core.config import ConfigError, load_grid


def _offline_defaults() -> None:
    # Weights and data ship in packages; nothing should reach a hub unless the user asks.
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def cmd_list(args: argparse.Namespace) -> int:
    from fl_core.data import DATASETS
    from fl_core.methods import METHODS
    from fl_core.models import MODELS, model_label

    print("methods:")
    for name, cls in sorted(METHODS.items()):
        doc = (cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else ""
        print(f"  {name:<14} {doc}")
    print("datasets:")
    for name, fn in sorted(DATASETS.items()):
        print(f"  {name:<14} {(fn.__doc__ or '').strip().splitlines()[0]}")
    print("models:")
    for name in sorted(MODELS):
        print(f"  {model_label(name)}")
    return 0


def _select(grid, args):
    cells = grid.cells()
    if args.dataset:
        cells = [c for c in cells if c.dataset == args.dataset]
    if args.alpha:
        cells = [
            c
            for c in cells
            if str(c.alpha) == args.alpha
            or (c.alpha != "iid" and args.alpha != "iid" and float(args.alpha) == c.alpha)
        ]
    if args.method:
        cells = [c for c in cells if args.method in (c.method.display, c.method.name)]
    if args.seed is not None:
        cells = [c for c in cells if c.seed == args.seed]
    return cells


def cmd_sweep(args: argparse.Namespace) -> int:
    from fl_core.report.summary import write_summary
    from fl_core.sweep import run_sweep

    overrides = {"output_dir": args.output_dir} if args.output_dir else None
    grid = load_grid(args.config, overrides)
    cells = _select(grid, args) if args.command == "run" else None
    if cells is not None and not cells:
        print("no cell of the grid matches the filters", file=sys.stderr)
        return 2
    try:
        report = run_sweep(grid, backend=args.backend, progress=not args.no_progress, cells=cells)
    except KeyboardInterrupt:
        print(
            "\ninterrupted: finished cells are stored and the running cell kept its last checkpoint; "
            "run the same command again to resume",
            file=sys.stderr,
        )
        return 130
    try:  # a report bug must not change the sweep's outcome: the store holds everything
        from fl_core.report import build_report

        md = build_report(grid, args.config)
    except Exception as err:  # noqa: BLE001
        logging.getLogger("layerbench").error("report failed (%s); the quick summary is still written", err)
        md = write_summary(grid, args.config)
    print(
        f"{report.ran} cells run, {report.skipped_done} already done, statuses {report.statuses}, "
        f"{report.wall_s / 60:.1f} min"
    )
    print(f"summary: {md}")
    if report.failed:
        print("FAILED cells (their reason is in the table; fix and re-run to resume):", file=sys.stderr)
        for f in report.failed:
            print("  " + f, file=sys.stderr)
        return 1
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from fl_core.report import build_report

    grid = load_grid(args.config, {"output_dir": args.output_dir} if args.output_dir else None)
    readme = build_report(
        grid,
        args.config,
        claims_path=args.claims,
        out_dir=args.report_dir,
        wandb=not args.no_wandb,
        target_fraction=args.target_fraction,
        reference=args.reference,
    )
    print(f"report: {readme}")
    return 0


def main(argv: list[str] | None = None) -> int:
    _offline_defaults()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    p = argparse.ArgumentParser(prog="layerbench", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="registered methods, datasets and models").set_defaults(fn=cmd_list)
    for name, help_ in [
        ("sweep", "run every unfinished cell of a grid"),
        ("run", "run the cells matching filters"),
    ]:
        s = sub.add_parser(name, help=help_)
        s.add_argument("config")
        s.add_argument(
            "--backend", default=os.environ.get("BACKEND", "sequential"), choices=["sequential", "ray"]
        )
        s.add_argument("--output-dir")
        s.add_argument("--no-progress", action="store_true")
        s.add_argument("--dataset")
        s.add_argument("--alpha")
        s.add_argument("--method", help="a method label or name")
        s.add_argument("--seed", type=int)
        s.set_defaults(fn=cmd_sweep)
    r = sub.add_parser("report", help="rebuild every table, figure and claim from the local results store")
    r.add_argument("config")
    r.add_argument("--output-dir", help="the results store (default: the grid's output_dir)")
    r.add_argument(
        "--report-dir",
        help="where the report goes (default: output_dir for the grid 'default', "
        "else <output_dir>/<grid name>)",
    )
    r.add_argument(
        "--claims", help="claims file (default: claims.yaml next to the config, else configs/claims.yaml)"
    )
    r.add_argument(
        "--target-fraction",
        type=float,
        default=0.95,
        help="target accuracy as a fraction of the reference method's final mean accuracy",
    )
    r.add_argument("--reference", default="full", help="reference method label or name for the target")
    r.add_argument("--no-wandb", action="store_true", help="do not log the report to W&B")
    r.set_defaults(fn=cmd_report)
    args = p.parse_args(argv)
    try:
        return args.fn(args)
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
