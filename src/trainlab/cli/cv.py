"""``trainlab cv RECIPE --folds K``: cross-validation, one ordinary run per fold."""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["add_parsers"]


def cmd_cv(args: argparse.Namespace) -> int:
    from trainlab.studies.cv import cross_validate

    result = cross_validate(
        args.recipe, args.overrides, folds=args.folds, stratified=args.stratified, loo=args.loo,
        repeats=args.repeats, workers=args.workers, refit=args.refit, out=args.out,
        light=True if args.light else None, runs_root=args.runs_root,
    )  # fmt: skip
    failed = [f["fold"] for f in result.folds if f["status"] != "ok"]
    return 3 if failed else 0  # a diverged fold, as `trainlab train` exits on divergence


def add_parsers(sub: Any) -> None:
    c = sub.add_parser(
        "cv",
        help="cross-validate a recipe (k-fold, stratified, repeated, leave-one-out)",
        description="Cross-validation over the recipe's training data (its train and val "
        "splits together; the test split is never used): one run per fold in OUT/fold_R_K, "
        "then mean ± std and 95%% CI of every validation metric, the out-of-fold confusion "
        "matrix and per-fold curves (cv.json, cv.md, cv.png). The same command again skips "
        "finished folds.",
    )
    c.add_argument("recipe", help="recipe YAML")
    c.add_argument("overrides", nargs="*", help="overrides such as train.epochs=5")
    c.add_argument("--folds", type=int, default=None, metavar="K", help="number of folds (5)")
    c.add_argument("--stratified", action="store_true",
                   help="keep the class proportions in every fold (classification)")  # fmt: skip
    c.add_argument("--loo", action="store_true", help="leave-one-out: one fold per sample")
    c.add_argument("--repeats", type=int, default=1, metavar="R",
                   help="repeat k-fold R times with different shuffles")  # fmt: skip
    c.add_argument("--workers", type=int, default=1, metavar="W",
                   help="folds trained at once (at most one per core; cores // W torch "
                   "threads each)")  # fmt: skip
    c.add_argument(
        "--refit",
        action="store_true",
        help="then train the final model on all training data (tested on test)",
    )
    c.add_argument(
        "--light",
        action="store_true",
        help="no checkpoints, TensorBoard or report per fold (always for --loo)",
    )
    c.add_argument(
        "--out", metavar="DIR", help="study folder (default: RUNS_ROOT/<name>-cv-<scheme>-<hash>)"
    )
    c.add_argument("--runs-root", default="runs", metavar="DIR", help="parent of the default")
    c.set_defaults(func=cmd_cv)
