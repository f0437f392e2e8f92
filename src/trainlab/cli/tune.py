"""``trainlab tune RECIPE --space space.yaml --trials N``: Optuna search over ordinary runs."""

from __future__ import annotations

import argparse
import shlex
from typing import Any

__all__ = ["add_parsers"]

SAMPLERS = ("tpe", "random", "cmaes", "gp", "grid")  # trainlab.studies.tune.SAMPLERS
PRUNERS = ("median", "hyperband", "successive_halving", "none")


def _params(params: dict[str, Any]) -> str:
    return " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                    for k, v in params.items())  # fmt: skip


def cmd_tune(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from trainlab.studies.tune import tune

    result = tune(
        args.recipe, args.overrides, space=args.space, trials=args.trials,
        sampler=args.sampler, pruner=args.pruner, storage=args.storage,
        study_name=args.study, workers=args.workers, out=args.out, seed=args.seed,
        heartbeat=args.heartbeat, plots=not args.no_plots,
    )  # fmt: skip
    console = Console()
    table = Table(title=f"study '{result.study_name}' ({result.direction} {result.monitor})")
    for col in ("trial", "state", result.monitor, "epochs", "params", "reason"):
        table.add_column(col, justify="right" if col in ("trial", "epochs") else "left")
    best_no = result.best["number"] if result.best else None
    for r in result.trials:
        value = f"{r['value']:.4f}" if r["value"] is not None else ""
        style = "bold green" if r["number"] == best_no else None
        table.add_row(str(r["number"]), r["state"].lower(), value, str(r["epochs"] or ""),
                      _params(r["params"]), (r["reason"] or "")[:60], style=style)  # fmt: skip
    console.print(table)
    for note in result.notes:
        console.print(f"note: {note}")
    if result.best is not None:
        b = result.best
        console.print(f"best: trial {b['number']}, {result.monitor} {b['value']:.4f}: "
                      f"{_params(b['params'])}")  # fmt: skip
        line = " ".join(shlex.quote(x) for x in [*args.overrides, *result.best_overrides])
        print(f"override: {' '.join(shlex.quote(x) for x in result.best_overrides)}")
        print(f"train it: trainlab train {shlex.quote(args.recipe)} {line}")
    print(f"trials: {result.files.get('html')}")
    print(f"study: {result.out}")
    return 0


def add_parsers(sub: Any) -> None:
    t = sub.add_parser(
        "tune",
        help="hyperparameter search with Optuna (every trial an ordinary run)",
        description="Search the keys of a space file with Optuna; each trial is a run in "
        "<study>/trials/N, the validation monitor is reported every epoch so the pruner stops "
        "poor trials early. Running the same command again resumes the study; another machine "
        "joins it with the same command and --storage.",
    )
    t.add_argument("recipe", help="recipe YAML")
    t.add_argument("overrides", nargs="*", help="fixed overrides such as train.epochs=5")
    t.add_argument("--space", required=True, metavar="FILE",
                   help="YAML: dotted.key: {type: float|int|categorical, low, high, log, step, "
                   "choices}")  # fmt: skip
    t.add_argument("--trials", type=int, required=True, metavar="N",
                   help="finished (complete or pruned) trials the study should hold")  # fmt: skip
    t.add_argument("--sampler", default="tpe", choices=SAMPLERS)
    t.add_argument("--pruner", default="median", choices=PRUNERS)
    t.add_argument("--storage", metavar="URL",
                   help="Optuna storage, e.g. postgresql://user@host/db (default: SQLite in the "
                   "study folder)")  # fmt: skip
    t.add_argument("--study", metavar="NAME", help="study name (default: the recipe's name)")
    t.add_argument("--workers", type=int, default=1, metavar="W",
                   help="processes on this machine, each with cores // W threads")  # fmt: skip
    t.add_argument("--out", metavar="DIR", help="study folder (default: runs/tune-<study>)")
    t.add_argument("--seed", type=int, default=0, help="sampler seed (worker i: seed + 1000 i)")
    t.add_argument("--heartbeat", type=int, default=10, metavar="S",
                   help="seconds between a running trial's heartbeats; a trial silent for 3 "
                   "heartbeats (its worker died) is marked failed and retried")  # fmt: skip
    t.add_argument("--no-plots", action="store_true", help="skip Optuna's PNG figures")
    t.set_defaults(func=cmd_tune)
