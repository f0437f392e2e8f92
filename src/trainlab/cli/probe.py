"""``trainlab probe RUN_DIR...``: linear-probe and k-NN accuracy of runs' frozen features."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

__all__ = ["add_parsers", "cmd_probe"]


def cmd_probe(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from trainlab.selfsup.probe import probe_runs

    rows = probe_runs(
        args.runs, k=args.knn, train_samples=args.train_samples or None,
        test_samples=args.test_samples or None, which=args.checkpoint, seed=args.seed,
    )  # fmt: skip
    if args.json:
        print(json.dumps([r.as_dict() for r in rows], indent=2))
        return 0
    table = Table(title=f"frozen features: linear probe and {args.knn}-NN, test accuracy")
    for col in ("run", "model", "weights", "features", "linear probe", f"{args.knn}-NN"):
        table.add_column(col, justify="left" if col in ("run", "model", "weights") else "right")
    for r in rows:
        table.add_row(Path(r.run).name, r.model, r.weights, str(r.feature_dim),
                      f"{r.probe_acc:.4f}", f"{r.knn_acc:.4f}")  # fmt: skip
    Console().print(table)
    if args.out:
        Path(args.out).write_text(json.dumps([r.as_dict() for r in rows], indent=2) + "\n")
    return 0


def add_parsers(sub: Any) -> None:
    """Add ``probe`` to ``trainlab``'s sub-commands."""
    p = sub.add_parser(
        "probe",
        help="linear probe and k-NN accuracy of runs' frozen features (self-supervised read-out)",
        description="Freeze each run's network, compute features (model.encode, else the input "
        "of the last linear layer) of the first run's training and test images, fit a logistic "
        "regression and a k-NN classifier on the training features and report their test "
        "accuracy, for the trained weights and for the same network with its initial random "
        "weights (e.g. trainlab probe runs/simclr runs/supervised --knn 20).",
    )
    p.add_argument("runs", nargs="+", metavar="RUN_DIR")
    p.add_argument("--knn", type=int, default=20, metavar="K", help="neighbours (default 20)")
    p.add_argument("--train-samples", type=int, default=10_000, metavar="N",
                   help="training images the probes fit (0: all; default 10000)")  # fmt: skip
    p.add_argument("--test-samples", type=int, default=0, metavar="N",
                   help="test images scored (0: all, the default)")  # fmt: skip
    p.add_argument("--checkpoint", default="best", choices=["best", "latest"])
    p.add_argument("--seed", type=int, default=0, help="draws the training sample (default 0)")
    p.add_argument("--json", action="store_true", help="print the rows as JSON")
    p.add_argument("--out", metavar="FILE", help="also write the rows as JSON to FILE")
    p.set_defaults(func=cmd_probe)
