"""``trainlab doctor RECIPE|RUN_DIR``: ranked findings with the overrides that fix them."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from trainlab.errors import TrainlabError

__all__ = ["add_parsers"]


def cmd_doctor(args: argparse.Namespace) -> int:
    from rich.console import Console

    from trainlab.doctor import doctor, is_run_dir
    from trainlab.doctor.render import print_diagnosis

    target = args.target
    if not is_run_dir(target) and not Path(target).is_file():
        raise TrainlabError(f"doctor: {target}: neither a recipe file nor a run directory")
    options: dict[str, Any] = {}
    if not is_run_dir(target):
        options = {"skip": tuple(args.skip), "lr_steps": args.lr_steps, "budget_s": args.budget}
    diag = doctor(target, args.overrides, **options)
    console = Console(stderr=args.json)
    print_diagnosis(diag, console, verbose=args.verbose)
    if args.apply:
        _apply(args, diag, console)
    if args.json:
        print(json.dumps(diag.as_dict(), indent=1))
    return 0


def _apply(args: argparse.Namespace, diag: Any, console: Any) -> None:
    from trainlab.config.load import apply_overrides, load_recipe
    from trainlab.doctor.findings import apply_fixes, valid_fixes

    out = Path(args.apply)
    source = Path(args.target) / "config.yaml" if diag.kind == "run" else Path(args.target)
    if out.resolve() == source.resolve():
        raise TrainlabError(f"--apply {out}: give a new file, not the recipe being diagnosed")
    raw = apply_overrides(load_recipe(source), [] if diag.kind == "run" else args.overrides)
    _, dropped = valid_fixes(raw, diag.fixes)
    apply_fixes(raw, diag, out)
    if dropped:
        console.print(f"not applicable to this recipe, left out: {' '.join(dropped)}")
    console.print(f"fixed recipe: {out}")


def add_parsers(sub: Any) -> None:
    d = sub.add_parser(
        "doctor",
        help="diagnose a recipe (pre-flight) or a run (from its records)",
        description="A recipe gets a pre-flight check (data, model, optimisation, machine; "
        "trains nothing to completion); a run directory is diagnosed from its files, which "
        "are only read. Findings are ranked, most likely cause first, each with its fix as "
        "recipe overrides.",
    )
    d.add_argument("target", metavar="RECIPE_OR_RUN_DIR")
    d.add_argument("overrides", nargs="*", help="overrides of the recipe, e.g. optim.lr=0.5")
    d.add_argument("--apply", metavar="OUT.yaml", help="write the recipe with the fixes applied")
    d.add_argument("--json", action="store_true", help="print the findings as JSON on stdout")
    d.add_argument("--verbose", "-v", action="store_true", help="also show info-level notes")
    d.add_argument("--skip", action="append", default=[],
                   choices=["data", "model", "gradcheck", "overfit", "lr", "machine"],
                   help="leave out a pre-flight check (repeatable)")  # fmt: skip
    d.add_argument("--lr-steps", type=int, default=60, metavar="N",
                   help="steps of the LR range test (pre-flight)")  # fmt: skip
    d.add_argument("--budget", type=float, default=20.0, metavar="SECONDS",
                   help="time for the LR range test (overfitting one batch gets half): a slow "
                   "model gets fewer range-test steps, or none below 20")  # fmt: skip
    d.set_defaults(func=cmd_doctor)
