"""``trainlab lr-find``, ``batch-size`` and ``sweep``: parse arguments, call
``trainlab.studies``, print the figures. Library imports happen inside the commands."""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["add_parsers", "cmd_batch_size", "cmd_lr_find", "cmd_sweep"]


def cmd_lr_find(args: argparse.Namespace) -> int:
    from pathlib import Path

    from rich.console import Console

    from trainlab.config.load import load_config
    from trainlab.studies.lr_find import lr_find

    cfg = load_config(args.recipe, args.overrides)
    out = Path(args.out or f"runs/lr-find-{cfg.name}")
    res = lr_find(cfg, start=args.start, end=args.end, steps=args.steps, out=out)
    console = Console()
    ended = f"; stopped early: {res.stopped}" if res.stopped else ""
    console.print(f"LR range test: {len(res.lrs)} steps from {res.lrs[0]:.3g} to "
                  f"{res.lrs[-1]:.3g}{ended}")  # fmt: skip
    for rule, lr in res.suggestions.items():
        console.print(f"  {rule:<11} {lr:.3g}")
    if res.recipe_lr is not None:
        console.print(f"  {'recipe':<11} {res.recipe_lr:.3g}")
    if res.reliable:
        console.print(f"the rules agree (within 1 decade); use: [bold]{res.override}[/bold]")
    else:
        console.print("[yellow]unreliable:[/yellow] " + "; ".join(res.reasons), markup=True)
    console.print(f"curve: {out / 'lr_find.png'}  data: {out / 'lr_find.json'}")
    return 0


def cmd_sweep(args: argparse.Namespace) -> int:
    from rich.console import Console

    from trainlab.studies.sweep import parse_grid, sweep
    from trainlab.studies.sweep_report import markdown, show

    console = Console()

    def report(run: Any, done: int, total: int) -> None:
        value = (run.summary.get("best") or {}).get("value")
        shown = f"{value:.4f}" if isinstance(value, float) else run.status
        params = " ".join(f"{k}={show(v)}" for k, v in run.params.items())
        reason = f" ({run.reason.splitlines()[0][:100]})" if run.reason else ""
        console.print(f"[{done}/{total}] {params} seed={run.seed}: {shown}{reason}",
                      markup=False, highlight=False, soft_wrap=True)  # fmt: skip

    grid = parse_grid(args.grid) if args.grid else None
    result = sweep(
        args.recipe, args.overrides, grid=grid, random_trials=args.random, space=args.space,
        seeds=args.seeds, workers=args.workers, out=args.out, on_run=report,
    )  # fmt: skip
    console.print(f"{len(result.runs)} runs ({result.trained} trained now) in {result.out}")
    print(markdown(result), end="")
    return 0


def cmd_batch_size(args: argparse.Namespace) -> int:
    from trainlab.studies.batch_size import find_batch_size, print_result

    res = find_batch_size(args.recipe, args.overrides, memory=args.memory,
                          max_batch=args.max_batch, out=args.out)  # fmt: skip
    print_result(res)
    return 0


def add_parsers(sub: Any) -> None:
    """Add ``lr-find``, ``batch-size`` and ``sweep`` to ``trainlab``'s sub-commands."""
    f = sub.add_parser(
        "lr-find", help="LR range test: suggested learning rate, and whether to trust it",
        description="Exponential learning-rate ramp through the recipe's own training loop "
        "(on a copy of the model); prints three rules' suggestions, whether they agree, and "
        "the override to use. Writes lr_find.png and lr_find.json.",
    )  # fmt: skip
    f.add_argument("recipe", metavar="RECIPE")
    f.add_argument("overrides", nargs="*", help="overrides such as data.batch_size=128")
    f.add_argument("--start", type=float, default=1e-7, help="first learning rate")
    f.add_argument("--end", type=float, default=10.0, help="last learning rate")
    f.add_argument("--steps", type=int, default=100, help="optimizer steps of the ramp")
    f.add_argument("--out", metavar="DIR", help="output folder (default runs/lr-find-<name>)")
    f.set_defaults(func=cmd_lr_find)

    b = sub.add_parser(
        "batch-size", help="largest batch that fits, throughput per batch, scaled LR",
        description="Training steps at growing batch sizes until the memory budget is reached "
        "(peak memory measured as `trainlab analyze` does; a CUDA out-of-memory is caught and "
        "the next smaller size kept); throughput at each size, and the recipe's learning rate "
        "scaled by the linear and square-root rules.",
    )  # fmt: skip
    b.add_argument("recipe", metavar="RECIPE")
    b.add_argument("overrides", nargs="*")
    b.add_argument("--memory", metavar="GIB", type=float,
                   help="memory budget in GiB (default: the device's free memory)")  # fmt: skip
    b.add_argument("--max-batch", type=int, default=4096, help="largest batch tried")
    b.add_argument("--out", metavar="DIR", help="output folder (default runs/batch-size-<name>)")
    b.set_defaults(func=cmd_batch_size)

    s = sub.add_parser(
        "sweep", help="grid or random sweep × seeds; each combination an ordinary run",
        description="Every combination of --grid values (or --random N samples of --space) × "
        "--seeds is a run directory in one sweep folder (sweep.json indexes them). Running the "
        "same command again skips finished runs and resumes interrupted ones. Prints mean ± "
        "std per group and t-tests between values of each key.",
    )  # fmt: skip
    s.add_argument("recipe", metavar="RECIPE")
    s.add_argument("overrides", nargs="*", help="overrides applied to every run")
    s.add_argument("--grid", action="append", default=[], metavar="KEY=V1,V2",
                   help="a swept key and its values; repeatable (the product is taken)")
    s.add_argument("--random", type=int, metavar="N", help="N random samples of --space")
    s.add_argument("--space", metavar="FILE", help="search space YAML (for --random)")
    s.add_argument("--seeds", type=int, default=1, help="runs per combination (seed, seed+1, …)")
    s.add_argument("--workers", type=int, default=1,
                   help="runs at once; each gets cores // W torch threads")  # fmt: skip
    s.add_argument("--out", metavar="DIR", help="sweep folder (default runs/sweep-<name>)")
    s.set_defaults(func=cmd_sweep)
