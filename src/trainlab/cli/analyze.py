"""``trainlab analyze`` and ``trainlab profile``: parse arguments, call ``trainlab.analyze``.

Imports of the library happen inside the commands: building the parser stays cheap for every
other command.
"""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["add_parsers", "cmd_analyze", "cmd_profile"]


def cmd_analyze(args: argparse.Namespace) -> int:
    from trainlab.analyze.analysis import AnalyzeOptions, run_analyze

    options = AnalyzeOptions(
        batch=args.batch,
        depth=args.depth,
        sweep=not args.no_sweep,
        max_batch=args.max_batch,
        time_limit=args.sweep_seconds,
    )
    run_analyze(
        args.target,
        [*args.opt, *args.overrides],
        input_shape=args.input,
        device=args.device,
        precision=args.precision,
        optim=args.optim,
        memory_budget=args.memory_budget,
        out=args.out,
        options=options,
    )
    return 0


def cmd_profile(args: argparse.Namespace) -> int:
    from trainlab.analyze.profile import run_profile

    run_profile(
        args.recipe,
        args.overrides,
        steps=args.steps,
        warmup=args.warmup,
        top=args.top,
        out=args.out,
        device=args.device,
    )
    return 0


def add_parsers(sub: Any) -> None:
    """Add ``analyze`` and ``profile`` to the ``trainlab`` sub-command parsers."""
    _add_analyze(sub)
    _add_profile(sub)


def _add_analyze(sub: Any) -> None:
    a = sub.add_parser(
        "analyze",
        help="parameters, FLOPs, memory and throughput of a model or recipe",
        description=(
            "Layer table (torchinfo), FLOPs per layer type (torch.utils.flop_counter), training "
            "memory, and throughput/latency/memory against batch size. TARGET is a registered "
            "model name (see `trainlab models`) or a recipe YAML."
        ),
    )
    a.add_argument("target", metavar="MODEL_OR_RECIPE")
    a.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="the same as --opt KEY=VALUE")
    a.add_argument(
        "--opt",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="model option (model name) or dotted recipe override (recipe); repeatable",
    )
    a.add_argument("--input", metavar="C,H,W", help="one sample's shape (model names only)")
    a.add_argument(
        "--batch", type=int, help="batch of the memory figures (default: the recipe's, or 32)"
    )
    a.add_argument("--depth", type=int, default=3, help="layer-table nesting depth shown")
    a.add_argument("--max-batch", type=int, default=512, help="largest batch of the sweep")
    a.add_argument("--memory-budget", metavar="SIZE", help="e.g. 8GiB (default: the device's)")
    a.add_argument("--sweep-seconds", type=float, default=60.0, help="time limit of the sweep")
    a.add_argument("--no-sweep", action="store_true", help="skip the batch-size sweep")
    a.add_argument("--device", help="auto, cpu, cuda (default: auto, or the recipe's)")
    a.add_argument(
        "--precision",
        default="fp32",
        choices=["fp32", "bf16", "fp16", "auto"],
        help="autocast precision (model names; a recipe uses its own)",
    )
    a.add_argument("--optim", default="sgd", help="optimizer for model names (default: sgd)")
    a.add_argument("--out", metavar="DIR", help="output folder (default: ./analyze-<name>/)")
    a.set_defaults(func=cmd_analyze)


def _add_profile(sub: Any) -> None:
    p = sub.add_parser(
        "profile",
        help="torch.profiler over training steps of a recipe",
        description="Profile N training steps of a recipe: top operators and a Chrome trace.",
    )
    p.add_argument("recipe", metavar="RECIPE")
    p.add_argument("overrides", nargs="*", help="overrides such as data.batch_size=256")
    p.add_argument("--steps", type=int, default=10, help="profiled training steps")
    p.add_argument("--warmup", type=int, default=1, help="steps run first, not profiled")
    p.add_argument("--top", type=int, default=15, help="operators in the table")
    p.add_argument("--device", help="auto, cpu, cuda (default: the recipe's)")
    p.add_argument("--out", metavar="DIR", help="output folder (default: ./profile-<name>/)")
    p.set_defaults(func=cmd_profile)
