"""Share of the machine's measured bf16 matmul peak that default-model training reaches.

1. Peak: ``torch.matmul`` of square bf16 (and fp32) matrices of each ``--sizes`` on the recipe's
   device, 2·n³ FLOPs per product, best GFLOP/s over ``--reps`` timings of ≥ ``--min-time`` s
   (bf16 timed both before and after the training run, the best kept).
2. Work per sample: FLOPs of one forward + backward of the default recipe's model, counted by
   ``torch.utils.flop_counter`` through ``trainlab.analyze.count_flops`` (2 FLOPs per
   multiply-add; convolutions and matmuls, not element-wise ops, norms or pooling).
3. Speed: a short training run of the default recipe through ``build_experiment`` +
   ``Trainer.fit`` (its loader and augmentation, task loss, optimizer, schedule, precision and
   channels_last), stopped by ``train.max_steps``: after ``--warmup`` steps, ``--reps`` windows
   of ``--window`` optimizer steps timed at ``on_batch_end``; median samples/s (all windows lie
   in the first epoch, so no validation falls inside them).

``bf16_peak_share`` = FLOPs per sample × samples/s ÷ bf16 peak. The denominator is what a large
bf16 matmul reaches, not the datasheet's peak.

    .venv/bin/python bench/bf16_peak.py [--sizes 2048 4096] [--quick] [key=value ...]
"""

from __future__ import annotations

import argparse
import copy
import math
import statistics
import time

import torch
from _common import RECIPE, fmt_spread, sync

from trainlab import load_config
from trainlab.analyze import count_flops
from trainlab.experiment import build_callbacks, build_experiment
from trainlab.train.precision import resolve_device


def matmul_gflops(
    n: int, dtype: torch.dtype, device: torch.device, reps: int, min_time: float
) -> float:
    """Best GFLOP/s of an (n, n) @ (n, n) product over ``reps`` timings."""
    a = torch.randn(n, n, device=device).to(dtype)
    b = torch.randn(n, n, device=device).to(dtype)
    sync(device)
    t = time.perf_counter()
    torch.matmul(a, b)  # warm-up, and a first estimate of one product's time
    sync(device)
    calls = max(1, math.ceil(min_time / max(time.perf_counter() - t, 1e-6)))
    best = 0.0
    for _ in range(reps):
        sync(device)
        t = time.perf_counter()
        for _ in range(calls):
            torch.matmul(a, b)
        sync(device)
        best = max(best, 2 * n**3 * calls / (time.perf_counter() - t) / 1e9)
    return best


class StepClock:
    """Callback: wall time at the end of chosen optimizer steps (device synced there only)."""

    def __init__(self, steps: set[int], device: torch.device) -> None:
        self.steps, self.device = steps, device
        self.at: dict[int, float] = {}

    def on_batch_end(self, state) -> None:
        if state.step in self.steps:
            sync(self.device)
            self.at[state.step] = time.perf_counter()


def train_rate(overrides: list[str], warmup: int, window: int, reps: int):
    """(experiment, FLOPs per sample of forward+backward, samples/s of each timed window)."""
    total = warmup + window * reps
    cfg = load_config(RECIPE, [*overrides, f"train.max_steps={total}"])
    marks = {warmup + window * i for i in range(reps + 1)}
    exp = build_experiment(cfg)
    clock = StepClock(marks, exp.trainer.device)
    exp.trainer.callbacks = [*build_callbacks(cfg), clock]
    loader = exp.data.loader("train")
    if total >= len(loader):  # the epoch's last (maybe partial) batch and validation stay out
        raise SystemExit(f"{total} steps ≥ {len(loader)} per epoch: lower --window/--reps")
    x, _ = next(iter(loader.iter_epoch(0)))
    probe = copy.deepcopy(exp.model)  # counting runs a backward: leave the trained model alone
    flops = count_flops(probe, (x[:8],)).train / 8
    exp.trainer.fit(exp.model, exp.task, exp.data, exp.optimizer, exp.schedule)
    t = [clock.at[m] for m in sorted(marks)]
    rates = [window * loader.batch_size / (b - a) for a, b in zip(t, t[1:])]
    return exp, flops, rates


DTYPES = {"bf16": torch.bfloat16, "fp32": torch.float32}


def matmul_peaks(
    args: argparse.Namespace, device: torch.device, names: tuple[str, ...], when: str
) -> dict[str, float]:
    """Best GFLOP/s per dtype over ``args.sizes``, with one printed line per size."""
    peaks: dict[str, float] = {}
    for name in names:
        for n in args.sizes:
            g = matmul_gflops(n, DTYPES[name], device, args.reps, args.min_time)
            print(f"matmul {name} {n:5d}×{n:<5d} {g:10,.1f} GFLOP/s (best of {args.reps}, {when})")
            peaks[name] = max(peaks.get(name, 0.0), g)
    return peaks


def main() -> None:
    ap = argparse.ArgumentParser(
        description="bf16 matmul peak (and fp32 peak) of this machine in GFLOP/s, the default "
        "model's training FLOP/s (flop_counter FLOPs per sample × samples/s of a short "
        "default-recipe run), and their ratio. Prints `bench bf16_peak_share <f> ratio`."
    )
    ap.add_argument("overrides", nargs="*", help="overrides of the default recipe (key=value)")
    ap.add_argument("--sizes", type=int, nargs="+", default=[2048, 4096], help="matrix sizes")
    ap.add_argument("--reps", type=int, default=5, help="matmul timings / training windows")
    ap.add_argument("--min-time", type=float, default=0.5, help="s per matmul timing")
    ap.add_argument("--warmup", type=int, default=5, help="training steps before timing")
    ap.add_argument("--window", type=int, default=10, help="training steps per timed window")
    ap.add_argument("--quick", action="store_true", help="smoke test: tiny sizes (meaningless)")
    args = ap.parse_args()
    overrides = list(args.overrides)
    if args.quick:
        args.sizes, args.reps, args.min_time, args.warmup, args.window = [256, 512], 2, 0.05, 1, 2
        overrides = ["data.subset=2000", "data.test_subset=1000", *overrides]

    device = resolve_device(load_config(RECIPE, overrides).train.device)
    # bf16 peak timed before and after the training run, best kept: a slow spell of the machine
    # during one of them does not lower the denominator.
    peaks = matmul_peaks(args, device, ("bf16", "fp32"), "before training")
    exp, flops, rates = train_rate(overrides, args.warmup, args.window, args.reps)
    after = matmul_peaks(args, device, ("bf16",), "after training")
    peaks["bf16"] = max(peaks["bf16"], after["bf16"])
    rate = statistics.median(rates)
    achieved = flops * rate / 1e9
    print(f"device {device}, threads {torch.get_num_threads()}; training: precision "
          f"{exp.trainer.precision}, channels_last {exp.trainer.channels_last}, "
          f"batch {exp.data.loader('train').batch_size}")  # fmt: skip
    print(f"forward+backward {flops / 1e6:.2f} MFLOP/sample (flop_counter)")
    print(f"training {fmt_spread(rates, ',.0f', ' samples/s')}")
    print(
        f"achieved {achieved:,.1f} GFLOP/s = {achieved / peaks['bf16']:.3f} of the bf16 peak "
        f"({peaks['bf16']:,.1f}), {achieved / peaks['fp32']:.3f} of the fp32 peak "
        f"({peaks['fp32']:,.1f}); bf16/fp32 matmul {peaks['bf16'] / peaks['fp32']:.2f}x"
    )
    print(f"bench bf16_matmul_peak_gflops {peaks['bf16']:.1f} GFLOP/s")
    print(f"bench fp32_matmul_peak_gflops {peaks['fp32']:.1f} GFLOP/s")
    print(f"bench default_train_gflops {achieved:.1f} GFLOP/s")
    print(f"bench bf16_peak_share {achieved / peaks['bf16']:.3f} ratio")


if __name__ == "__main__":
    main()
