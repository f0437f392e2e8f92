"""``trainlab <command>``: parse arguments, call the library, turn user errors into one line.

Each command lives in a ``cmd_*`` function that only translates arguments into one library call.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
from collections.abc import Callable, Sequence

from rich.console import Console

from trainlab.errors import TrainlabError

__all__ = ["main", "build_parser"]

# Further command groups: each module has ``add_parsers(sub)`` that adds its sub-commands with
# ``set_defaults(func=...)``; a function returns the exit code. Modules import heavy parts lazily.
COMMAND_MODULES: tuple[str, ...] = (
    "trainlab.cli.data",
    "trainlab.cli.analyze",
    "trainlab.cli.report",
    "trainlab.cli.sample",
    "trainlab.cli.generative",
    "trainlab.cli.doctor",
    "trainlab.cli.plugins",
    "trainlab.cli.verify",
    "trainlab.cli.studies",
    "trainlab.cli.cv",
    "trainlab.cli.tune",
    "trainlab.cli.deploy",
    "trainlab.cli.compress",
    "trainlab.cli.probe",
)


def launch_torchrun(args: argparse.Namespace) -> int:
    """``train --nproc N …`` = ``torchrun --standalone --nproc-per-node N -m trainlab train …``."""
    import subprocess

    argv = list(args.argv)
    i = argv.index("--nproc") if "--nproc" in argv else -1
    rest = argv[:i] + argv[i + 2 :] if i >= 0 else [a for a in argv if not a.startswith("--nproc=")]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone",
           "--nproc-per-node", str(args.nproc), "-m", "trainlab", *rest]  # fmt: skip
    return subprocess.call(cmd)


def cmd_train(args: argparse.Namespace) -> int:
    from trainlab.run import train_run

    if args.nproc > 1:
        return launch_torchrun(args)
    if args.resume is None and args.recipe is None:
        raise TrainlabError("train: give a RECIPE, or --resume RUN_DIR")
    overrides = list(args.overrides)
    recipe = args.recipe
    if args.resume is not None and recipe is not None and "=" in recipe:
        overrides.insert(0, recipe)  # `train --resume RUN k=v`: the first word is an override
        recipe = None
    elif args.resume is not None and recipe is not None:
        raise TrainlabError("train: give either a RECIPE or --resume RUN_DIR, not both")
    train_run(
        recipe,
        overrides,
        run_dir=args.run_dir,
        resume=args.resume,
        runs_root=args.runs_root,
        progress="lines" if args.no_progress else True,  # --no-progress: epoch lines only
    )
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from rich.table import Table

    from trainlab.run import evaluate_run

    result = evaluate_run(args.run, split=args.split, which=args.checkpoint,
                          overrides=args.overrides)  # fmt: skip
    extra = f", {' '.join(args.overrides)}" if args.overrides else ""
    table = Table(title=f"{args.run} ({args.split}, {args.checkpoint} checkpoint{extra})")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for k, v in result.items():
        if isinstance(v, float):
            table.add_row(k, f"{v:.4f}")
    Console().print(table)
    if args.json:
        print(json.dumps(result))
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    from rich.markup import escape  # docstrings hold [brackets]: text, not markup
    from rich.table import Table

    from trainlab.catalog_cache import cached_rows, parse_overrides

    words = ([args.name] if args.name else []) + list(args.overrides)
    name = next((w for w in words if "=" not in w), None)
    if name:
        from trainlab.models.catalog import model_options

        opts, doc = model_options(name)
        table = Table(title=escape(f"{name}: {doc}" if doc else name))
        for col in ("option", "type", "default"):
            table.add_column(col)
        for row in opts:
            table.add_row(*(escape(c) for c in row))
        Console().print(table)
        return 0
    overrides = parse_overrides([w for w in words if "=" in w])
    given = ", ".join(f"{k}={v}" for k, v in overrides.items())
    where = f"with {given} where a model takes it" if given else "at each model's defaults"
    table = Table(title=f"registered models (parameters {escape(where)})")
    table.add_column("model")
    table.add_column("parameters", justify="right")
    table.add_column("what")
    def build() -> list[tuple[str, int | None, str]]:
        from trainlab.models.catalog import model_table

        return model_table(overrides)

    for model, params, doc in cached_rows(overrides, build):
        table.add_row(model, f"{params:,}" if params is not None else "?", escape(doc))
    Console().print(table)
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="trainlab", description="trainlab: a deep-learning workbench for PyTorch."
    )
    p.add_argument("--debug", action="store_true",
                   help="show the traceback of every error, user mistakes included")  # fmt: skip
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    t = sub.add_parser(
        "train",
        help="train from a recipe (or resume a run)",
        description="Train from a YAML recipe; overrides are dotted.key=value.",
    )
    t.add_argument("recipe", nargs="?", help="recipe YAML (e.g. recipes/fashion_mnist.yaml)")
    t.add_argument("overrides", nargs="*", help="overrides such as optim.lr=0.05 train.epochs=3")
    t.add_argument("--resume", metavar="RUN_DIR", help="continue a run from its latest checkpoint")
    t.add_argument("--run-dir", metavar="DIR", help="write the run here (must be new or empty)")
    t.add_argument("--runs-root", default="runs", metavar="DIR", help="parent of new run folders")
    t.add_argument("--no-progress", action="store_true",
                   help="no progress bar (one line per epoch still)")  # fmt: skip
    t.add_argument("--nproc", type=int, default=1, metavar="N",
                   help="data-parallel processes on this machine (starts torchrun)")  # fmt: skip
    t.set_defaults(func=cmd_train)

    e = sub.add_parser(
        "eval",
        help="evaluate a run's checkpoint on a split",
        description="Load a run's best checkpoint and compute its metrics; overrides of the "
        "run's config.yaml change how it is evaluated (e.g. task.tta=flip).",
    )
    e.add_argument("run", metavar="RUN_DIR")
    e.add_argument("overrides", nargs="*", help="e.g. task.tta=flip data.eval_batch_size=500")
    e.add_argument("--split", default="test", choices=["test", "val", "train"])
    e.add_argument("--checkpoint", default="best", choices=["best", "latest"])
    e.add_argument("--json", action="store_true", help="also print the metrics as JSON")
    e.set_defaults(func=cmd_eval)

    m = sub.add_parser("models", help="list registered models, or show one model's options",
                       description="Every registered model with its parameter count, or the "
                       "options of one (what a recipe's model: section may set).")  # fmt: skip
    m.add_argument("name", nargs="?", help="a registered model: show its options")
    m.add_argument("overrides", nargs="*", help="options for the parameter column, e.g. "
                   "num_classes=10 in_channels=3 (applied where a model takes them)")  # fmt: skip
    m.set_defaults(func=cmd_models)
    for module in COMMAND_MODULES:
        importlib.import_module(module).add_parsers(sub)
    from trainlab.cli.plugins import add_plugin_options

    for command in {id(c): c for c in sub.choices.values()}.values():  # aliases: once
        add_plugin_options(command)  # --import FILE_OR_MODULE on every command
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``trainlab`` console script; returns the exit code."""
    parser = build_parser()
    # --debug anywhere on the line (or TRAINLAB_DEBUG=1): every error shows its traceback.
    argv = list(argv if argv is not None else sys.argv[1:])
    debug = "--debug" in argv or os.environ.get("TRAINLAB_DEBUG") == "1"
    argv = [a for a in argv if a != "--debug"]
    args, extra = parser.parse_known_args(argv)
    # Overrides may also follow options (`train R --run-dir D k=v`): argparse leaves them over.
    overrides = [e for e in extra if "=" in e and not e.startswith("-")]
    if len(overrides) != len(extra) or (overrides and not hasattr(args, "overrides")):
        parser.error(f"unrecognized arguments: {' '.join(e for e in extra if e not in overrides)}")
    if overrides:
        args.overrides = [*args.overrides, *overrides]
    args.argv = argv
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        from trainlab.cli.plugins import load_cli_plugins

        load_cli_plugins(args)  # entry points and --import, before the command runs
        return func(args)
    except TrainlabError as e:
        if debug:
            raise
        print(f"trainlab: error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("trainlab: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
