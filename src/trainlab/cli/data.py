"""``trainlab data RECIPE``: what the recipe's data looks like before training on it."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

__all__ = ["add_parsers"]


def cmd_data(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from trainlab.config.load import load_config
    from trainlab.data.inspect import sample_grid, summarize
    from trainlab.experiment import build_data

    cfg = load_config(args.recipe, args.overrides)
    module = build_data(cfg.data.name, default_seed=cfg.seed, **cfg.data.options())
    module.setup("cpu")
    summary = summarize(module)
    console = Console()
    table = Table(title=f"data '{cfg.data.name}' of {args.recipe}")
    for col in ("split", "n", "x shape", "dtype", "min", "max", "mean", "std", "classes"):
        table.add_column(col, justify="right")
    for split, st in summary["splits"].items():
        counts = st.get("class_counts")
        table.add_row(
            split, str(st["n"]), str(tuple(st["x_shape"])), st["x_dtype"], f"{st['min']:.3g}",
            f"{st['max']:.3g}", f"{st['mean']:.3g}", f"{st['std']:.3g}",
            f"{min(counts)}..{max(counts)} per class" if counts else "-",
        )  # fmt: skip
    console.print(table)
    dups = ", ".join(f"{k}: {v}" for k, v in summary["duplicates"].items())
    console.print(f"samples found in two splits (leakage check): {dups or 'none'}")
    out = Path(args.out or f"runs/data-{cfg.name}")
    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    if len(module.input_shape) == 3:
        console.print(f"samples: {sample_grid(module, out / 'samples.png')}")
    console.print(f"summary: {out / 'summary.json'}")
    return 0


def add_parsers(sub: Any) -> None:
    d = sub.add_parser(
        "data",
        help="summarise a recipe's data (statistics, class counts, leakage, sample grid)",
        description="Shapes, value ranges, class counts per split, samples duplicated across "
        "splits, and a PNG grid of samples.",
    )
    d.add_argument("recipe")
    d.add_argument("overrides", nargs="*", help="overrides such as data.subset=1000")
    d.add_argument("--out", metavar="DIR", help="where summary.json and samples.png go")
    d.set_defaults(func=cmd_data)
