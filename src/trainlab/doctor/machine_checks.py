"""Pre-flight rules on the machine: threads against cores, precision, input pipeline speed."""

from __future__ import annotations

import os
import time
from typing import Any

from trainlab.config.schema import Config
from trainlab.doctor.findings import Finding

__all__ = ["cores", "check_threads", "check_precision", "check_input_pipeline"]

FAST_BATCH_S = 0.02  # a loader this fast (in-memory tensors) is never worth a warning


def cores() -> int:
    """CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def check_threads(cfg: Config, default_threads: int) -> list[Finding]:
    """``train.threads`` (or torch's default, or ``OMP_NUM_THREADS``) above the cores."""
    n = cores()
    threads = cfg.train.threads or default_threads
    omp = os.environ.get("OMP_NUM_THREADS", "")
    if omp.isdigit() and not cfg.train.threads:
        threads = int(omp)
    if threads <= n:
        return []
    return [Finding(
        "machine.threads", "thread_oversubscription", "warning",
        min(1.0, 0.8 + 0.05 * threads / n),
        f"{threads} torch threads on {n} cores", {"threads": threads, "cores": n},
        "more compute threads than cores make them wait for each other: steps can become "
        "many times slower (60x measured on this project's 2-core machine)",
        [f"train.threads={n}"],
    )]  # fmt: skip


def check_precision(exp: Any) -> list[Finding]:
    """What ``train.precision`` resolves to here (information)."""
    prec = str(getattr(exp.trainer, "precision", exp.cfg.train.precision))
    device = str(getattr(exp.trainer, "device", "cpu"))
    return [Finding(
        "machine.precision", "precision", "info", 0.1,
        f"training runs in {prec} on {device}", {"precision": prec, "device": device},
        "bf16 autocast is ~2-3x faster than fp32 where the CPU or GPU runs it natively",
    )]  # fmt: skip


def check_input_pipeline(exp: Any, step_s: Any, batches: int = 3) -> list[Finding]:
    """Time to draw a training batch against ``step_s()``, the time to train on one."""
    it = exp.data.loader("train").iter_epoch(0)
    t0 = time.perf_counter()
    drawn = sum(1 for _ in zip(range(batches), it, strict=False))
    t_data = (time.perf_counter() - t0) / max(drawn, 1)
    if t_data < FAST_BATCH_S:  # in-memory batching: nothing to compare
        return []
    t_step = float(step_s())
    ev = {"data_s_per_batch": t_data, "step_s_per_batch": t_step}
    share = t_data / (t_data + t_step) if t_data + t_step > 0 else 0.0
    if share < 0.5:
        return []
    return [Finding(
        "machine.input_bound", "input_bound", "warning" if share > 0.7 else "info", 0.4,
        f"drawing a batch takes {t_data * 1e3:.0f} ms, training on it {t_step * 1e3:.0f} ms: "
        f"{share:.0%} of the time goes to input", {**ev, "share": share},
        "the model waits for data: decode once and keep the data in memory, or use more "
        "loader workers (without exceeding the cores)",
    )]  # fmt: skip
