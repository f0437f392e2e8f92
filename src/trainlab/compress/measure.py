"""What every compression table reports: test accuracy, file size, CPU latency (batch 1) and
throughput (batch 256) of a model, measured the same way for the original and the compressed one.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import torch

__all__ = ["Row", "accuracy", "latency_ms", "throughput", "measure", "print_table", "batch_of"]

Fn = Callable[[torch.Tensor], torch.Tensor]


@dataclass
class Row:
    """One line of a compression table."""

    name: str
    acc: float | None
    bytes: int | None
    latency_ms: float | None
    throughput: float | None
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def accuracy(fn: Fn, loader: Any) -> float:
    """Top-1 accuracy of ``fn`` (logits) over one pass of ``loader`` (no test-time augmentation).

    >>> accuracy(model, exp.data.loader("test"))  # doctest: +SKIP
    0.931
    """
    right = total = 0
    with torch.no_grad():
        for x, y in loader.iter_epoch(0):
            right += int((fn(x.cpu()).argmax(-1) == y.cpu()).sum())
            total += len(y)
    return right / max(total, 1)


def batch_of(xs: torch.Tensor, n: int) -> torch.Tensor:
    """``n`` inputs, repeating ``xs`` as often as needed."""
    reps = -(-n // len(xs))
    return xs.repeat((reps,) + (1,) * (xs.dim() - 1))[:n].contiguous()


def _timed(fn: Fn, x: torch.Tensor, reps: int, warmup: int) -> list[float]:
    with torch.no_grad():
        for _ in range(warmup):
            fn(x)
        out = []
        for _ in range(reps):
            t0 = time.perf_counter()
            fn(x)
            out.append(time.perf_counter() - t0)
    return out


def latency_ms(fn: Fn, x1: torch.Tensor, reps: int = 50) -> float:
    """Median wall time of one call on a batch of one sample, in milliseconds."""
    return statistics.median(_timed(fn, x1, reps, warmup=5)) * 1e3


def throughput(fn: Fn, xb: torch.Tensor, reps: int = 5) -> float:
    """Samples per second on batches like ``xb`` (median of ``reps`` calls)."""
    return len(xb) / statistics.median(_timed(fn, xb, reps, warmup=2))


def measure(name: str, fn: Fn, loader: Any | None, xs: torch.Tensor, size: int | None,
            note: str = "", reps: int = 50) -> Row:  # fmt: skip
    """Accuracy on ``loader`` (skipped when None), latency at batch 1 and throughput at batch
    256 built from ``xs``."""
    acc = accuracy(fn, loader) if loader is not None else None
    lat = latency_ms(fn, xs[:1], reps)
    thr = throughput(fn, batch_of(xs, 256), max(5, reps // 5))
    return Row(name, acc, size, lat, thr, note)


def print_table(title: str, rows: list[Row], console: Any = None) -> None:
    """The rows as a rich table; ratios against the first row."""
    from rich.console import Console
    from rich.table import Table

    console = console or Console()
    base = rows[0]
    table = Table(title=title)
    for col in ("model", "test acc", "size", "latency b=1", "throughput b=256", "speed-up", "note"):
        table.add_column(col, justify="left" if col in ("model", "note") else "right")
    for r in rows:
        speed = (f"{r.throughput / base.throughput:.2f}×"
                 if r.throughput and base.throughput else "-")  # fmt: skip
        table.add_row(
            r.name, "-" if r.acc is None else f"{r.acc:.4f}",
            "-" if r.bytes is None else f"{r.bytes / 1e6:.3f} MB",
            "-" if r.latency_ms is None else f"{r.latency_ms:.3f} ms",
            "-" if r.throughput is None else f"{r.throughput:,.0f}/s", speed, r.note,
        )  # fmt: skip
    console.print(table)
