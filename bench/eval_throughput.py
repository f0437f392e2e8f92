"""Evaluation throughput of the default model over the 10,000 Fashion-MNIST test images.

The model, data and trainer come from the default recipe through ``build_experiment`` (resnet_small
with the recipe's widths, its precision and memory format, the test loader at the recipe's
evaluation batch size). Weights are freshly initialised: throughput does not depend on them.
Timed, alternating in every repetition:

- ``Trainer.evaluate``: ``Trainer.evaluate`` over ``data.loader("test")`` with the task's
  metrics (loss, accuracy, macro P/R/F1, per-class accuracy, confusion matrix, all through
  torchmetrics), one view per image, batch norm folded (``train.fold_batchnorm``, the default).
  Headline figure, ``eval_images_per_s``.
- ``Trainer.evaluate, BN not folded``: the same with ``train.fold_batchnorm: false``.
- ``Trainer.evaluate, flip TTA``: what the recipe's validation runs (``task.tta: flip``: two
  forward passes per image); ``+ curves`` adds ``task.test_metrics`` (ROC/PR curves, AUROC, AP,
  top-5): what the end of ``trainlab train`` and ``trainlab eval`` run on the test split.
- ``loader + forward``: the test loader feeding the bare model, eval mode, ``inference_mode``,
  the trainer's autocast and channels_last: no loss, no metrics, no folding.
- ``forward``: the bare model alone on the same batches already in memory (normalised, in the
  model's memory format), ``inference_mode``: the ceiling of the unfolded model; ``forward, BN
  folded`` the same for ``fold_batchnorm(model)``.

Medians over ``--reps`` repetitions (after one warm-up pass each), with the interquartile range.

    .venv/bin/python bench/eval_throughput.py [--reps 7] [--quick] [key=value ...]
"""

from __future__ import annotations

import argparse
import copy
import time
from collections.abc import Callable

import torch
from _common import RECIPE, fmt_spread, spread, sync

from trainlab import load_config
from trainlab.experiment import Experiment, build_experiment
from trainlab.train.folding import fold_batchnorm


def timed(fn: Callable[[], int], device: torch.device) -> float:
    """Images per second of one call of ``fn`` (which returns the images it processed)."""
    sync(device)
    t = time.perf_counter()
    n = fn()
    sync(device)
    return n / (time.perf_counter() - t)


def make_cases(exp: Experiment) -> tuple[dict[str, Callable[[], int]], int, int]:
    """The timed passes over the test split, each returning the images it processed; and the
    number of test images and the evaluation batch size."""
    trainer, model, task, data = exp.trainer, exp.model, exp.task, exp.data
    single = copy.copy(task)
    single.tta = None  # one view per image
    tta = copy.copy(task)
    tta.tta = "flip"
    loader = data.loader("test")
    metrics = task.metrics(data.num_classes).to(trainer.device)
    test_metrics = task.test_metrics(data.num_classes).to(trainer.device)

    def as_input(x: torch.Tensor) -> torch.Tensor:  # as the trainer feeds a batch to the model
        return x.contiguous(memory_format=torch.channels_last) if trainer.channels_last else x

    batches = [as_input(x) for x, _ in loader.iter_epoch(0)]  # (B, 1, 28, 28), normalised
    n_images = sum(len(x) for x in batches)

    def bare(net: torch.nn.Module) -> Callable[[], int]:
        def forward() -> int:
            with torch.inference_mode(), trainer.autocast():
                for x in batches:
                    net(x)
            return n_images

        return forward

    model.eval()
    folded = fold_batchnorm(model)

    def loader_forward() -> int:
        model.eval()
        n = 0
        with torch.inference_mode(), trainer.autocast():
            for x, _ in loader.iter_epoch(0):
                model(as_input(x))
                n += len(x)
        return n

    def evaluate(t: object, m: object, fold: bool = True) -> Callable[[], int]:
        def run() -> int:
            trainer.fold_batchnorm = fold
            trainer.evaluate(model, t, loader, "test", m)  # type: ignore[arg-type]
            trainer.fold_batchnorm = True
            return n_images

        return run

    cases = {
        "forward (inference_mode)": bare(model),
        "forward, BN folded": bare(folded),
        "loader + forward": loader_forward,
        "Trainer.evaluate": evaluate(single, metrics),
        "Trainer.evaluate, BN not folded": evaluate(single, metrics, fold=False),
        "Trainer.evaluate, flip TTA": evaluate(tta, metrics),
        "Trainer.evaluate, flip TTA + curves": evaluate(tta, test_metrics),
    }
    return cases, n_images, len(batches[0])


def main() -> None:
    ap = argparse.ArgumentParser(
        description="Evaluation throughput (images/s) of the default model over the 10k "
        "Fashion-MNIST test images: Trainer.evaluate (the real evaluation path) against the "
        "bare model's forward under inference_mode, same precision and memory format. "
        "Prints `bench eval_images_per_s <n> images/s` and the comparison figures."
    )
    ap.add_argument("overrides", nargs="*", help="overrides of the default recipe (key=value)")
    ap.add_argument("--reps", type=int, default=7, help="timed repetitions (default 7)")
    ap.add_argument(
        "--quick", action="store_true", help="smoke test: 1,000 test images, 2 reps (meaningless)"
    )
    args = ap.parse_args()
    overrides = list(args.overrides)
    if args.quick:
        args.reps = 2
        overrides = ["data.subset=2000", "data.test_subset=1000", *overrides]

    exp = build_experiment(load_config(RECIPE, overrides))
    trainer = exp.trainer
    cases, n_images, batch = make_cases(exp)
    rates: dict[str, list[float]] = {name: [] for name in cases}
    for fn in cases.values():
        fn()  # warm-up: oneDNN kernels, torchmetrics states
    for rep in range(args.reps):
        order = list(cases.items()) if rep % 2 == 0 else list(cases.items())[::-1]
        for name, fn in order:  # alternating order: drift in machine speed hits every case
            rates[name].append(timed(fn, trainer.device))

    print(f"{n_images} test images, batch {batch}, device {trainer.device}, precision "
          f"{trainer.precision}, channels_last {trainer.channels_last}, "
          f"threads {torch.get_num_threads()}")  # fmt: skip
    ceiling = spread(rates["forward (inference_mode)"])[0]
    for name, r in rates.items():
        share = spread(r)[0] / ceiling
        print(f"{name:36s} {fmt_spread(r, ',.0f', ' images/s'):46s} {share:6.1%} of forward")
    med = {name: spread(r)[0] for name, r in rates.items()}
    print(f"bench eval_images_per_s {med['Trainer.evaluate']:.0f} images/s")
    print(f"bench eval_forward_images_per_s {med['forward (inference_mode)']:.0f} images/s")
    print(f"bench eval_tta_images_per_s {med['Trainer.evaluate, flip TTA']:.0f} images/s")
    curves = med["Trainer.evaluate, flip TTA + curves"]
    print(f"bench eval_tta_with_curves_images_per_s {curves:.0f} images/s")
    folding = med["Trainer.evaluate"] / med["Trainer.evaluate, BN not folded"]
    print(f"bench eval_fold_batchnorm_speedup {folding:.3f} x")


if __name__ == "__main__":
    main()
