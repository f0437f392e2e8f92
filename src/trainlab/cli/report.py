"""``trainlab report``, ``compare``, ``runs`` and ``board``: views built from run directories."""

from __future__ import annotations

import argparse
from pathlib import Path

__all__ = ["add_parsers", "cmd_board", "cmd_compare", "cmd_report", "cmd_runs"]


def cmd_report(args: argparse.Namespace) -> int:
    from trainlab.reports import build_report, find_runs

    for run in find_runs(args.runs):
        print(build_report(run))
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from rich.console import Console

    from trainlab.reports import compare_runs, write_comparison
    from trainlab.reports.compare import left_out_of_overlay, overlay_keys, rich_tables
    from trainlab.reports.plots import plot_overlay
    from trainlab.reports.runs import print_wide

    console = Console()
    if args.vs:
        from trainlab.studies.groups import compare_groups, groups_table

        rows = compare_groups(args.runs, args.vs, args.metric or None)
        console.print(f"A: {' '.join(map(str, args.runs))}\nB: {' '.join(map(str, args.vs))}",
                      highlight=False)  # fmt: skip
        console.print(groups_table(rows, "A", "B"))
        return 0
    cmp = compare_runs(args.runs)
    print_wide(console, *rich_tables(cmp))  # whole run names, even piped
    if args.plot:
        keys = overlay_keys(cmp.runs)
        print(plot_overlay(cmp.runs, keys, args.plot) or "no curves to plot")
        for missing in left_out_of_overlay(cmp, keys):  # a failed run draws no line: say so
            print(f"not in the plot: {missing}")
    if args.html:
        print(write_comparison(cmp, args.html))
    return 0


def add_parsers(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add ``report``, ``compare``, ``runs`` and ``board`` to ``trainlab``'s sub-commands."""
    r = sub.add_parser(
        "report",
        help="write plots and report.html for runs",
        description="Write the figures and a self-contained report.html into each run "
        "directory (a folder of runs, e.g. runs/ or a sweep, reports every run in it).",
    )
    r.add_argument("runs", nargs="+", metavar="RUN_DIR")
    r.set_defaults(func=cmd_report)

    c = sub.add_parser(
        "compare",
        help="compare runs side by side",
        description="Metrics of several runs side by side, the config keys that differ, and "
        "their validation curves overlaid. A folder of runs counts as all the runs in it.",
    )
    c.add_argument("runs", nargs="+", metavar="RUN_DIR")
    c.add_argument("--html", metavar="OUT", type=Path, help="also write a comparison page here")
    c.add_argument("--plot", metavar="PNG", type=Path, help="also write the overlay plot here")
    c.add_argument("--vs", nargs="+", metavar="RUN_DIR",
                   help="a second group: mean ± std of each group and the t-test of the "
                   "difference (paired by seed when the seeds match)")  # fmt: skip
    c.add_argument("--metric", action="append", default=[],
                   help="with --vs: only this metric (repeatable), e.g. 'test/acc'")  # fmt: skip
    c.set_defaults(func=cmd_compare)
    _add_listing(sub)


def cmd_runs(args: argparse.Namespace) -> int:
    from rich.console import Console

    from trainlab.reports.runs import list_runs, print_wide, runs_table

    rows = list_runs(args.root, sort=args.sort, reverse=args.reverse, where=args.where)
    print_wide(Console(), runs_table(rows, args.sort))
    return 0


def cmd_board(args: argparse.Namespace) -> int:
    from trainlab.reports.runs import serve_board

    print(f"TensorBoard on http://{args.host}:{args.port}/ (Ctrl-C to stop)", flush=True)
    return serve_board(args.root, args.port, args.host)


def _add_listing(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    r = sub.add_parser(
        "runs",
        help="list runs in a folder",
        description="One line per run: name, date, model, status and key metric.",
    )
    r.add_argument("root", nargs="?", default="runs", metavar="RUNS_DIR")
    r.add_argument("--sort", metavar="KEY", help="metric (best first) or config key")
    r.add_argument("--reverse", action="store_true", help="reverse the order")
    r.add_argument(
        "--where", action="append", metavar="KEY=VALUE", help="keep matching runs (repeatable)"
    )
    r.set_defaults(func=cmd_runs)

    b = sub.add_parser(
        "board",
        help="serve the runs' TensorBoard logs",
        description="Start TensorBoard over every run's tb/ folder, on 127.0.0.1 by default.",
    )
    b.add_argument("root", nargs="?", default="runs", metavar="RUNS_DIR")
    b.add_argument("--port", type=int, default=6006)
    b.add_argument("--host", default="127.0.0.1", help="address to bind (default: this machine)")
    b.set_defaults(func=cmd_board)
