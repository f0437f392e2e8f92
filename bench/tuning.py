"""TPE + median pruning against random search without pruning, on one budget of epochs.

Recipe: a one-hidden-layer MLP on scikit-learn's digits (val/loss, lower is better), SGD; the
space is wide on purpose (learning rate over four decades, momentum, width), as a first search
is. For each seed, random search runs RANDOM_TRIALS full trials of EPOCHS epochs: its budget is
the epochs it trained, its figure the best validation loss it found. TPE + median pruning then
runs (``trainlab.tune``, resumed 5 trials at a time) until one of its completed trials reaches
that figure or it has spent the same budget. The headline is the median over seeds of

    epochs TPE + pruning trained until it reached random search's best / random search's epochs

(goal ≤ 0.33; above 1 means it did not reach it within random search's budget).

    python bench/tuning.py [--seeds 0 1 2] [--trials 40] [--epochs 10]
"""

from __future__ import annotations

import argparse
import io
import math
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

RECIPE = """
name: bench_tune_digits
seed: 0
data: {name: digits, batch_size: 64}
model: {name: mlp, hidden: [32]}
task: {name: classification}
optim: {name: sgd, lr: 0.05}
train: {epochs: 10, threads: 1, tensorboard: false, report: false, norms: false,
        eval_test: false, log_every: 50, monitor: val/loss, monitor_mode: min}
"""
SPACE = """
optim.lr: {type: float, low: 1.0e-4, high: 1.0, log: true}
optim.momentum: {type: float, low: 0.0, high: 0.99}
model.hidden.0: {type: int, low: 8, high: 128, step: 8}
"""


def _epochs_to_reach(trials: list[dict[str, Any]], target: float) -> tuple[int, bool]:
    """Epochs trained (in trial order) until a completed trial's value is ≤ target."""
    spent = 0
    for t in sorted(trials, key=lambda t: t["number"]):
        spent += t["epochs"] or 0
        if t["state"] == "COMPLETE" and t["value"] is not None and t["value"] <= target:
            return spent, True
    return spent, False


def one_seed(seed: int, root: Path, trials: int, epochs: int) -> dict[str, Any]:
    from rich.console import Console

    from trainlab.studies.tune import tune

    quiet = Console(file=io.StringIO())
    (root / "recipe.yaml").write_text(RECIPE)
    (root / "space.yaml").write_text(SPACE)
    common = dict(space=root / "space.yaml", seed=seed, plots=False, console=quiet)
    over = [f"train.epochs={epochs}"]
    t0 = time.perf_counter()
    rnd = tune(root / "recipe.yaml", over, trials=trials, sampler="random", pruner="none",
               out=root / f"random-{seed}", **common)  # fmt: skip
    budget = sum(t["epochs"] or 0 for t in rnd.trials)
    target = rnd.best["value"]
    t1 = time.perf_counter()
    n = 0
    while True:  # grow the TPE study 5 trials at a time (each call resumes the last)
        n += 5
        tpe = tune(root / "recipe.yaml", over, trials=n, sampler="tpe", pruner="median",
                   out=root / f"tpe-{seed}", **common)  # fmt: skip
        spent, reached = _epochs_to_reach(tpe.trials, target)
        if reached or spent >= budget:
            break
    pruned = sum(t["state"] == "PRUNED" for t in tpe.trials)
    return {
        "seed": seed, "random_best": target, "budget": budget,
        "tpe_epochs": spent if reached else math.inf, "tpe_trials": len(tpe.trials),
        "tpe_pruned": pruned, "tpe_best": tpe.best["value"] if tpe.best else math.nan,
        "ratio": spent / budget if reached else math.inf,
        "random_s": t1 - t0, "tpe_s": time.perf_counter() - t1,
    }  # fmt: skip


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--trials", type=int, default=40, help="random-search trials")
    p.add_argument("--epochs", type=int, default=10, help="epochs of a full trial")
    args = p.parse_args()
    import torch

    torch.set_num_threads(1)
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-tune-") as tmp:
        for seed in args.seeds:
            root = Path(tmp) / f"seed{seed}"
            root.mkdir()
            rows.append(one_seed(seed, root, args.trials, args.epochs))
            r = rows[-1]
            print(f"seed {seed}: random {args.trials} trials, {r['budget']} epochs, best val/loss "
                  f"{r['random_best']:.4f} ({r['random_s']:.0f} s) | TPE+median reached it after "
                  f"{r['tpe_epochs']} epochs, {r['tpe_trials']} trials ({r['tpe_pruned']} pruned; "
                  f"its best {r['tpe_best']:.4f}; {r['tpe_s']:.0f} s) | ratio {r['ratio']:.3f}",
                  flush=True)  # fmt: skip
    from trainlab.studies.stats import format_summary, summarize

    ratios = [r["ratio"] for r in rows]
    print(f"ratios per seed: {', '.join(f'{x:.3f}' for x in ratios)}")
    reached = [x for x in ratios if math.isfinite(x)]
    print(f"seeds that reached it: {len(reached)} of {len(ratios)}; their ratios: "
          f"{format_summary(summarize(reached)) if reached else '-'}")  # fmt: skip
    print(f"seeds: {' '.join(str(s) for s in args.seeds)}")
    print(f"bench tune_budget_to_random_best {statistics.median(ratios):.3f} ratio")


if __name__ == "__main__":
    main()
