"""``layerbench``: sweep a grid, run one cell, list what is registered, rebuild the report."""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys

from fl_core.errors import ConfigError, StoreError
from fl_core.lock import StoreBusy, store_lock
from fl_core.registry import PluginError


def _offline_defaults() -> None:
    # Weights and data ship in packages; nothing should reach a hub unless the user asks.
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def cmd_list(args: argparse.Namespace) -> int:
    """Registered methods (with their params and defaults), datasets and models; torch-free."""
    from fl_core.catalog import listing

    print(listing())
    return 0


def _alpha_arg(value: str) -> float | str:
    if value == "iid" or value.startswith("natural:"):
        return value
    try:
        return float(value)
    except ValueError:
        raise ConfigError(f"--alpha {value!r}: not a number, 'iid' or 'natural:<column>'") from None


def _select(grid, args):
    """The cells matching ``--dataset/--alpha/--method/--seed`` (a filter no cell matches is an error
    naming what the grid has)."""
    cells = grid.cells()
    want = _alpha_arg(args.alpha) if args.alpha else None
    for flag, value, have in [
        ("--dataset", args.dataset, grid.datasets),
        ("--alpha", want, grid.all_alphas()),
        ("--method", args.method, [m.display for m in grid.methods] + [m.name for m in grid.methods]),
        ("--seed", args.seed, grid.seeds),
    ]:
        if value is not None and value not in have:
            raise ConfigError(
                f"{flag} {value}: not in the grid {grid.name!r}; it has {sorted(set(map(str, have)))}"
            )
    if args.dataset:
        cells = [c for c in cells if c.dataset == args.dataset]
    if want is not None:
        cells = [c for c in cells if c.alpha == want]
    if args.method:
        cells = [c for c in cells if args.method in (c.method.display, c.method.name)]
    if args.seed is not None:
        cells = [c for c in cells if c.seed == args.seed]
    return cells


def cmd_sweep(args: argparse.Namespace) -> int:
    from fl_core.validate import load_grid  # loads the registries (and plugins): after main's handlers

    overrides = {"output_dir": args.output_dir} if args.output_dir else None
    grid = load_grid(args.config, overrides)  # torch-free: a bad config fails before torch loads
    backend = args.backend or grid.backend
    filtered = any(v is not None for v in (args.dataset, args.alpha, args.method, args.seed))
    cells = _select(grid, args) if filtered or args.command == "run" else None
    if cells is not None and not cells:
        print("no cell of the grid matches the filters", file=sys.stderr)
        return 2
    progress = quiet_progress(args.no_progress)
    if args.dry_run:  # reads only: needs neither the lock nor Ray
        return _dry_run(grid, cells, backend)
    # the lock first, torch and the sweep's imports after: a second sweep is refused at once
    with store_lock(grid.output_dir, args.wait, who=args.command):
        from fl_core.sweep import run_sweep

        try:
            report = run_sweep(grid, backend=backend, progress=progress, cells=cells, locked=True)
        except KeyboardInterrupt:
            print(
                "\ninterrupted: finished cells are stored and the running cell kept its last checkpoint; "
                "run the same command again to resume",
                file=sys.stderr,
            )
            return 130
        md = _report_after_sweep(grid, args, subset=cells is not None)
    return _sweep_outcome(report, md)


def _dry_run(grid, cells, backend: str) -> int:
    """``--dry-run``: what the sweep would run and restore, and its estimated wall time; writes nothing."""
    from fl_core.sweep_plan import plan_sweep

    plan = plan_sweep(grid, cells)
    print(plan.line(grid, dry_run=True))
    if not plan.todo:
        print("nothing to train")
        return 0
    from fl_core.estimate import describe  # torch: only when there is something to time

    print(describe(grid, plan.todo, backend))
    from fl_core.flop_estimate import estimate  # analytic FLOPs per device (a GPU's time before one is lent)

    print("\n".join(estimate(grid)))
    for c in plan.todo:
        print(f"  would run {c.hash()}  {c.dataset} alpha={c.alpha} {c.method.display} seed={c.seed}")
    return 0


def _sweep_outcome(report, md) -> int:
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


def _report_after_sweep(grid, args, subset: bool):
    """Rebuild the grid's report after a sweep; a subset (``run``, or filters) never rewrites a
    published report, nor does a store with fewer cells than it (:mod:`fl_core.report.publish`)."""
    from fl_core.report.build import report_dir
    from fl_core.report.publish import PublishRefused, is_published
    from fl_core.report.summary import write_summary

    out = report_dir(grid)
    if subset and is_published(grid, out):
        print(
            f"the published report in {out} is left as is (a subset of the grid ran); "
            f"`layerbench report {args.config}` rebuilds it from the store"
        )
        return out / "README.md"
    try:  # a report bug must not change the sweep's outcome: the store holds everything
        from fl_core.report import build_report

        return build_report(grid, args.config)
    except PublishRefused as err:
        print(f"report not rebuilt: {err}", file=sys.stderr)
        return out / "README.md"
    except Exception as err:  # noqa: BLE001
        logging.getLogger("layerbench").error("report failed (%s); the quick summary is still written", err)
        return write_summary(grid, args.config)


def quiet_progress(no_progress: bool) -> bool:
    """Whether bars are drawn: not with ``--no-progress`` nor when stderr is no terminal (logs stay
    free of carriage returns and escape codes). Off also silences the HF bars (weight loading)."""
    progress = not no_progress and sys.stderr.isatty()
    if not progress:
        os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"
        os.environ["TQDM_DISABLE"] = "1"
        if "transformers" in sys.modules:
            sys.modules["transformers"].utils.logging.disable_progress_bar()
        if "datasets" in sys.modules:
            sys.modules["datasets"].disable_progress_bars()
    return progress


def cmd_report(args: argparse.Namespace) -> int:
    from fl_core.validate import load_grid

    overrides = {"output_dir": args.output_dir} if args.output_dir else None
    grid = load_grid(args.config, overrides, claims=args.claims)
    with contextlib.ExitStack() as stack:
        try:  # never built from a store a sweep is writing (that one is refused: StoreBusy)
            stack.enter_context(store_lock(grid.output_dir, 0.0, who="report"))
        except StoreBusy:
            raise
        except StoreError as err:  # a read-only store: no sweep can be writing it either
            logging.getLogger("layerbench").warning("building the report without the store lock: %s", err)
        return _build_report(grid, args)


def _build_report(grid, args: argparse.Namespace) -> int:
    from fl_core.report import build_report

    readme = build_report(
        grid,
        args.config,
        claims_path=args.claims,
        out_dir=args.report_dir,
        wandb=not args.no_wandb,
        target_fraction=args.target_fraction,
        reference=args.reference,
        force=args.force,
    )
    print(f"report: {readme}")
    return 0


def _add_sweep_parsers(sub) -> None:
    """``sweep`` (every unfinished cell) and ``run`` (the cells matching filters): the same flags."""
    for name, help_ in [
        ("sweep", "run every unfinished cell of a grid"),
        ("run", "run the cells matching filters"),
    ]:
        s = sub.add_parser(name, help=help_, description=help_)
        s.add_argument("config", help="a grid YAML, e.g. configs/default.yaml")
        s.add_argument(
            "--backend",
            default=os.environ.get("BACKEND") or None,
            choices=["sequential", "ray"],
            help="default: the grid's `backend` (sequential unless the grid says ray)",
        )
        s.add_argument("--output-dir", help="the results store (default: the grid's output_dir)")
        s.add_argument(
            "--no-progress",
            action="store_true",
            help="no progress bars (also off when stderr is no terminal)",
        )
        s.add_argument("--dataset", help="only this dataset of the grid")
        s.add_argument(
            "--alpha", help="only this partition of the grid (a number, 'iid' or 'natural:<column>')"
        )
        s.add_argument("--method", help="only this method of the grid: a label or name")
        s.add_argument("--seed", type=int, help="only this seed of the grid")
        s.add_argument(
            "--dry-run",
            action="store_true",
            help="print the cells to run and restore and the estimated wall time, run nothing",
        )
        s.add_argument(
            "--wait",
            type=float,
            default=0.0,
            help="seconds to wait for another sweep on the store (-1: forever)",
        )
        s.set_defaults(fn=cmd_sweep)


def _add_report_parser(sub) -> None:
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
    r.add_argument("--force", action="store_true", help="replace the published report even with fewer cells")
    r.set_defaults(fn=cmd_report)


def build_parser() -> argparse.ArgumentParser:
    """Every subcommand's parser; cheap (no command's heavy imports: torch, optuna, the report)."""
    from fl_core.report.headline import add_parser as add_headline
    from fl_core.tune_cli import add_parser as add_tune

    p = argparse.ArgumentParser(prog="layerbench", description=__doc__)
    p.add_argument(
        "--debug", action="store_true", help="show the traceback of an error (anywhere on the line)"
    )
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="registered methods, datasets and models").set_defaults(fn=cmd_list)
    _add_sweep_parsers(sub)
    _add_report_parser(sub)
    add_tune(sub)
    add_headline(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    _offline_defaults()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    try:  # the parser's imports load the registries, plugins included
        args = build_parser().parse_args([a for a in argv if a != "--debug"])
    except PluginError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    args.debug = debug
    try:
        return args.fn(args)
    except (ConfigError, PluginError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except (StoreError, OSError) as err:  # storage: one clear line; --debug shows where
        if args.debug:
            raise
        print(f"error: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
