"""``trainlab profile``: torch.profiler over N training steps of a recipe's real setup.

The recipe is built with ``build_experiment`` and trained by the ordinary ``Trainer.fit`` (no
second loop): a callback advances the profiler after each batch, the first ``warmup`` steps are
left out (they allocate memory and choose kernels), and ``train.max_steps`` ends the run. The
result is a table of the operators with the most self time (time inside the operator itself,
not in the operators it calls) and a Chrome trace JSON to open in ``chrome://tracing`` or
https://ui.perfetto.dev.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from rich.table import Table

from trainlab.errors import ConfigError

__all__ = ["OpRow", "ProfileReport", "profile_recipe", "print_profile", "run_profile"]


@dataclass
class OpRow:
    name: str  # operator, e.g. "aten::convolution_backward"
    calls: int
    self_cpu_us: float  # microseconds inside the operator, summed over all calls
    cpu_total_us: float  # including the operators it calls
    self_device_us: float  # CUDA kernel time attributed to it (0 on the CPU)


@dataclass
class ProfileReport:
    recipe: str
    steps: int  # profiled training steps
    device: str
    wall_s: float  # seconds of the profiled steps (profiler overhead included)
    trace: Path
    ops: list[OpRow]  # the top operators by self CPU time
    self_cpu_us: float  # self CPU time of every operator, summed

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "trace": str(self.trace)}


class _StepProfiler:
    """Trainer callback: one profiler step per optimizer step."""

    def __init__(self, prof: torch.profiler.profile, warmup: int) -> None:
        self.prof, self.warmup = prof, warmup
        self.t_start: float | None = None
        self.t_end: float | None = None
        self.steps = 0

    def on_fit_start(self, state: Any) -> None:
        if self.warmup == 0:
            self.t_start = time.perf_counter()

    def on_batch_end(self, state: Any) -> None:
        self.steps += 1
        self.prof.step()
        if self.steps == self.warmup:
            self.t_start = time.perf_counter()
        self.t_end = time.perf_counter()


def _top_ops(prof: torch.profiler.profile, top: int) -> tuple[list[OpRow], float]:
    """The ``top`` operators by self CPU time, and the self CPU time of all operators (µs)."""
    rows = [
        OpRow(
            name=e.key,
            calls=int(e.count),
            self_cpu_us=float(e.self_cpu_time_total),
            cpu_total_us=float(e.cpu_time_total),
            self_device_us=float(getattr(e, "self_device_time_total", 0.0)),
        )
        for e in prof.key_averages()
        if not e.key.startswith("ProfilerStep")  # the step markers span everything
    ]
    rows.sort(key=lambda r: r.self_cpu_us, reverse=True)
    return rows[:top], sum(r.self_cpu_us for r in rows)


def _profiler(device: torch.device, warmup: int, steps: int, trace: Path) -> torch.profiler.profile:
    """Skip ``warmup`` steps, record ``steps``, then write the Chrome trace to ``trace``."""
    activities = [torch.profiler.ProfilerActivity.CPU]
    if device.type == "cuda":
        activities.append(torch.profiler.ProfilerActivity.CUDA)
    return torch.profiler.profile(
        activities=activities,
        schedule=torch.profiler.schedule(wait=0, warmup=warmup, active=steps, repeat=1),
        on_trace_ready=lambda p: p.export_chrome_trace(str(trace)),
    )


def profile_recipe(
    recipe: str | Path,
    overrides: Sequence[str] = (),
    *,
    steps: int = 10,
    warmup: int = 1,
    top: int = 15,
    out: str | Path | None = None,
    device: str | None = None,
) -> ProfileReport:
    """Profile ``steps`` training steps of ``recipe``; write the trace to ``out/trace.json``
    (default ``./profile-<recipe name>/``).

    >>> r = profile_recipe("recipes/fashion_mnist.yaml", steps=5)   # doctest: +SKIP
    >>> r.ops[0].name, r.trace                                     # doctest: +SKIP
    ('aten::convolution_backward', PosixPath('profile-fashion_mnist/trace.json'))
    """
    from trainlab.config.load import load_config
    from trainlab.experiment import build_experiment

    if steps < 1 or warmup < 0:
        raise ConfigError("--steps must be at least 1 and --warmup at least 0")
    extra = [f"train.device={device}"] if device else []
    cfg = load_config(recipe, [*overrides, *extra])
    total = warmup + steps
    # Enough epochs for `total` steps however small the data; max_steps ends the run there.
    cfg.train.max_steps = total
    cfg.train.epochs = max(cfg.train.epochs, total)
    exp = build_experiment(cfg)
    name = cfg.name if cfg.name != "run" else Path(recipe).stem
    trace = Path(out) if out else Path(f"profile-{name}")
    trace.mkdir(parents=True, exist_ok=True)
    trace = trace / "trace.json"
    prof = _profiler(exp.trainer.device, warmup, steps, trace)
    cb = _StepProfiler(prof, warmup)
    exp.trainer.callbacks.append(cb)
    with prof:
        exp.trainer.fit(exp.model, exp.task, exp.data, exp.optimizer, exp.schedule)
    wall = (cb.t_end or 0.0) - (cb.t_start or 0.0)
    ops, self_total = _top_ops(prof, top)
    return ProfileReport(
        recipe=str(recipe),
        steps=max(cb.steps - warmup, 0),
        device=str(exp.trainer.device),
        wall_s=wall,
        trace=trace,
        ops=ops,
        self_cpu_us=self_total,
    )


def print_profile(report: ProfileReport, console: Console | None = None) -> None:
    """The top operators by self CPU time, as a rich table.

    >>> print_profile(profile_recipe("recipes/fashion_mnist.yaml"))   # doctest: +SKIP
    """
    console = console or Console()
    per_step = report.wall_s / report.steps * 1e3 if report.steps else 0.0
    table = Table(
        title=f"{report.recipe}: {report.steps} steps on {report.device}, "
        f"{per_step:.1f} ms/step under the profiler"
    )
    table.add_column("operator", overflow="fold")  # fold: full names, never "aten::cross…"
    cols = ["calls", "self CPU ms", "self CPU %", "CPU total ms"]
    on_gpu = any(r.self_device_us for r in report.ops)
    for col in [*cols, "self device ms"] if on_gpu else cols:
        table.add_column(col, justify="right")
    total = report.self_cpu_us or 1.0
    for r in report.ops:
        cells = [
            r.name,
            str(r.calls),
            f"{r.self_cpu_us / 1e3:.2f}",
            f"{r.self_cpu_us / total:.1%}",
            f"{r.cpu_total_us / 1e3:.2f}",
        ]
        table.add_row(*cells, *([f"{r.self_device_us / 1e3:.2f}"] if on_gpu else []))
    table.caption = f"self CPU %: share of all operators' self time; trace: {report.trace}"
    console.print(table)
    console.print(f"open {report.trace} in chrome://tracing or https://ui.perfetto.dev")


def run_profile(
    recipe: str | Path,
    overrides: Sequence[str] = (),
    *,
    console: Console | None = None,
    **kwargs: Any,
) -> ProfileReport:
    """What ``trainlab profile`` does: :func:`profile_recipe`, then :func:`print_profile`.

    >>> run_profile("recipes/fashion_mnist.yaml", steps=5)   # doctest: +SKIP
    """
    report = profile_recipe(recipe, overrides, **kwargs)
    print_profile(report, console)
    return report
