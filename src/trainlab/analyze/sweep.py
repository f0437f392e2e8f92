"""Throughput, latency and memory against batch size; the largest batch that fits a budget.

For each batch size (1, 2, 4, … by default) the sweep times inference forwards and training
steps (median of repeated calls after one warm-up call) and records the memory of a training
step: on CUDA the allocator's peak (measured), on the CPU the estimate parameters + gradients +
optimizer state + tensors saved for backward (the CPU allocator hides the real peak) next to
the measured growth of the process's peak RSS.

The sweep stops before a size predicted (linearly from the sizes run so far) to exceed the
budget, so a CPU run never swaps and a GPU run rarely meets out-of-memory; then it bisects
between the last size that fitted and the first that did not.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import torch

from trainlab.analyze.memory import (
    measure_peak,
    optimizer_state_bytes,
    parameter_bytes,
    saved_tensor_bytes,
)
from trainlab.analyze.target import Sample, Target

__all__ = ["SweepRow", "SweepResult", "sweep", "batch_sizes", "largest_batch", "time_call"]


@dataclass
class SweepRow:
    batch: int
    infer_s: float  # median seconds of one inference forward of `batch` samples
    train_s: float  # median seconds of one training step (forward, backward, optimizer step)
    memory: int  # bytes of a training step: CUDA peak allocated; CPU estimate (see module doc)
    measured: int  # bytes: CUDA peak allocated; CPU growth of the peak RSS during one step

    @property
    def infer_per_s(self) -> float:
        return self.batch / self.infer_s if self.infer_s > 0 else float("inf")

    @property
    def train_per_s(self) -> float:
        return self.batch / self.train_s if self.train_s > 0 else float("inf")


@dataclass
class SweepResult:
    rows: list[SweepRow]
    budget: int | None  # bytes
    largest_fit: int | None  # largest batch whose training step fits the budget
    # "bisected" (between a size that fits and one that does not), "at least" (every size
    # fitted), "extrapolated" (time limit: from the memory line through the last two sizes)
    largest_how: str
    stopped: str  # why the sweep ended
    memory_how: str  # what the memory column is

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        for row, d in zip(self.rows, out["rows"]):
            d.update(infer_per_s=row.infer_per_s, train_per_s=row.train_per_s)
        return out


def batch_sizes(max_batch: int = 512) -> list[int]:
    """Powers of two up to ``max_batch`` (and ``max_batch`` itself).

    >>> batch_sizes(48)
    [1, 2, 4, 8, 16, 32, 48]
    """
    sizes = [1 << i for i in range(max_batch.bit_length()) if 1 << i <= max_batch]
    return sizes if sizes[-1] == max_batch else [*sizes, max_batch]


def time_call(
    fn: Callable[[], Any],
    sync: Callable[[], None],
    *,
    min_time: float = 0.2,
    min_reps: int = 3,
    max_reps: int = 20,
) -> float:
    """Median seconds of ``fn()`` after one untimed warm-up call.

    Repeats at least ``min_reps`` times (a median of three resists a busy machine's outliers)
    and until ``min_time`` seconds have been spent, at most ``max_reps`` times.

    >>> time_call(lambda: None, lambda: None, min_time=0.0) >= 0
    True
    """
    fn()
    sync()
    times: list[float] = []
    while len(times) < max_reps and (len(times) < min_reps or sum(times) < min_time):
        t0 = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def largest_batch(memory_at: Callable[[int], float], budget: int, lo: int, hi: int) -> int:
    """Largest ``b`` in ``[lo, hi)`` with ``memory_at(b) <= budget``, by bisection, given that
    ``lo`` fits, ``hi`` does not and memory grows with the batch.

    >>> largest_batch(lambda b: 100 + 10 * b, 475, 32, 64)
    37
    """
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if memory_at(mid) <= budget:
            lo = mid
        else:
            hi = mid
    return lo


def _step_memory(target: Target, sample: Sample) -> tuple[int, int]:
    """(memory of one training step, measured peak) in bytes; see SweepRow."""
    if target.device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(target.device)
        target.train_step(sample)
        target.sync()
        peak = int(torch.cuda.max_memory_allocated(target.device))
        return peak, peak
    params = list(target.model.parameters())
    saved: list[int] = []
    measured, _ = measure_peak(
        lambda: saved.append(saved_tensor_bytes(lambda: target.train_step(sample), params)),
        target.device,
    )
    total, trainable = parameter_bytes(target.model)
    state, _ = optimizer_state_bytes(target.optimizer)  # exists after the step above
    return total + trainable + state + saved[0], measured


def _measure_row(target: Target, batch: int, min_time: float) -> SweepRow:
    sample = target.make_sample(batch)
    infer_s = time_call(lambda: target.forward(sample), target.sync, min_time=min_time)
    memory, measured = _step_memory(target, sample)  # doubles as the training warm-up
    train_s = time_call(lambda: target.train_step(sample), target.sync, min_time=min_time)
    target.optimizer.zero_grad(set_to_none=True)
    return SweepRow(batch, infer_s, train_s, memory, measured)


def _predict_memory(rows: list[SweepRow], batch: int) -> float:
    # Memory is an affine function of the batch (fixed weights + per-sample activations):
    # extrapolate through the last two sizes.
    prev, last = rows[-2], rows[-1]
    slope = (last.memory - prev.memory) / (last.batch - prev.batch)
    return last.memory + slope * (batch - last.batch)


def _predict_seconds(rows: list[SweepRow], batch: int) -> float:
    # One size costs about 1 warm-up + 3 timed calls of each kind (the memory probe is the
    # training warm-up), each call proportional to the batch.
    last = rows[-1]
    return 4.0 * (last.infer_s + last.train_s) * batch / last.batch


def _probe(target: Target) -> Callable[[int], float]:
    """Memory of a training step at a batch size: measured on CUDA, estimated on the CPU."""

    def memory_at(batch: int) -> float:
        try:
            return _step_memory(target, target.make_sample(batch))[0]
        except torch.cuda.OutOfMemoryError:
            _recover(target)
            return float("inf")
        finally:
            target.optimizer.zero_grad(set_to_none=True)

    return memory_at


def _recover(target: Target) -> None:
    target.optimizer.zero_grad(set_to_none=True)
    if target.device.type == "cuda":
        torch.cuda.empty_cache()


def _largest_fit(
    target: Target,
    rows: list[SweepRow],
    budget: int | None,
    first_over: int | None,
    last_size: int,
) -> tuple[int | None, str]:
    """(largest batch within ``budget``, how it was found); see SweepResult.largest_how."""
    if budget is None:
        return None, ""
    fits = [r.batch for r in rows if r.memory <= budget]
    if not fits:
        return 0, "batch 1 does not fit"
    if first_over is None and fits[-1] == last_size:
        return last_size, "at least"  # every size asked for fitted
    predicted = lambda b: _predict_memory(rows, b)  # noqa: E731
    if first_over is None:
        # Stopped by the time limit: extrapolate the affine memory line up to the last size.
        if len(rows) < 2 or predicted(last_size) <= budget:
            return (last_size, "extrapolated") if len(rows) >= 2 else (fits[-1], "at least")
        return largest_batch(predicted, budget, fits[-1], last_size), "extrapolated"
    # CPU: the estimate is affine in the batch, so the fitted line answers exactly and at once;
    # CUDA: real training steps at the bisection points.
    memory_at = _probe(target) if target.device.type == "cuda" or len(rows) < 2 else predicted
    return largest_batch(memory_at, budget, fits[-1], first_over), "bisected"


def sweep(
    target: Target,
    sizes: list[int] | None = None,
    *,
    budget: int | None = None,
    time_limit: float = 60.0,
    min_time: float = 0.2,
) -> SweepResult:
    """Time inference and training at each batch size in ``sizes`` (default 1…512).

    Stops at the end of ``sizes``, before a size predicted to exceed ``budget`` bytes or to end
    after ``time_limit`` seconds, or at an out-of-memory error.

    >>> from trainlab.analyze.target import model_target
    >>> r = sweep(model_target("mlp", {"in_features": 8}, device="cpu"), [1, 2], min_time=0)
    >>> [row.batch for row in r.rows]
    [1, 2]
    """
    sizes = sizes or batch_sizes(512)
    rows: list[SweepRow] = []
    stopped, first_over = "largest batch size reached", None
    start = time.perf_counter()
    for b in sizes:
        # Two sizes fix the memory line (one alone cannot split weights from activations).
        if len(rows) >= 2 and budget is not None and _predict_memory(rows, b) > budget:
            stopped, first_over = "memory budget", b
            break
        if rows and time.perf_counter() - start + _predict_seconds(rows, b) > time_limit:
            stopped = "time limit"
            break
        try:
            rows.append(_measure_row(target, b, min_time))
        except torch.cuda.OutOfMemoryError:
            _recover(target)
            stopped, first_over = "out of memory", b
            break
        if budget is not None and rows[-1].memory > budget:
            stopped, first_over = "memory budget", b
            break
    largest, largest_how = _largest_fit(target, rows, budget, first_over, sizes[-1])
    how = "peak allocated (measured)" if target.device.type == "cuda" else "estimated"
    return SweepResult(rows, budget, largest, largest_how, stopped, how)
