"""``trainlab analyze``: every section for one model or recipe, printed and saved.

Layer table and FLOPs are per sample (batch 1: the convention of published model tables);
memory is at ``batch``; the sweep covers 1…``max_batch``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console

from trainlab.analyze.flops import FlopReport, count_flops
from trainlab.analyze.layers import LayerTable, layer_table
from trainlab.analyze.memory import MemoryReport, available_memory, memory_report
from trainlab.analyze.sweep import SweepResult, batch_sizes, sweep
from trainlab.analyze.target import Target, parse_size, resolve_target
from trainlab.errors import ConfigError

__all__ = ["AnalyzeOptions", "AnalysisReport", "analyze", "run_analyze"]


@dataclass
class AnalyzeOptions:
    """What to measure. ``memory_budget`` in bytes; None: the device's memory (GPU total, or
    the CPU's available memory)."""

    batch: int | None = None  # batch of the memory section; None: the recipe's (models: 32)
    depth: int = 3  # rows of the layer table down to this nesting depth
    sweep: bool = True
    max_batch: int = 512
    memory_budget: int | None = None
    time_limit: float = 60.0  # seconds for the whole sweep; it stops before overrunning
    min_time: float = 0.2  # seconds of timed calls per figure (after one warm-up call)


@dataclass
class AnalysisReport:
    name: str
    kind: str  # "model" or "recipe"
    device: str
    precision: str
    input_shapes: list[list[int]]  # one sample's shape per forward argument
    layers: LayerTable
    flops: FlopReport
    memory: MemoryReport
    sweep: SweepResult | None
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "device": self.device,
            "precision": self.precision,
            "input_shapes": self.input_shapes,
            "layers": self.layers.to_dict(),
            "flops": self.flops.to_dict(),
            "memory": self.memory.to_dict(),
            "sweep": self.sweep.to_dict() if self.sweep is not None else None,
            "notes": self.notes,
        }


def analyze(target: Target, options: AnalyzeOptions | None = None) -> AnalysisReport:
    """Layer table, FLOPs, memory and (optionally) the batch-size sweep of ``target``.

    >>> from trainlab.analyze.target import model_target
    >>> r = analyze(model_target("mlp", device="cpu"), AnalyzeOptions(sweep=False))
    >>> r.memory.optimizer == r.memory.params   # SGD with momentum: one buffer per weight
    True
    """
    opts = options or AnalyzeOptions()
    batch = opts.batch if opts.batch is not None else target.batch_size
    if batch < 1 or opts.max_batch < 1 or opts.depth < 1:
        raise ConfigError("--batch, --max-batch and --depth must be at least 1")
    one = target.make_sample(1)
    layers = layer_table(target.model, one.inputs, depth=opts.depth)
    flops = count_flops(target.model, one.inputs)
    memory = memory_report(target, batch)
    result = None
    if opts.sweep:
        budget = opts.memory_budget or available_memory(target.device)
        result = sweep(
            target,
            batch_sizes(opts.max_batch),
            budget=budget,
            time_limit=opts.time_limit,
            min_time=opts.min_time,
        )
    return AnalysisReport(
        name=target.name,
        kind=target.kind,
        device=str(target.device),
        precision=target.precision,
        input_shapes=[list(t.shape[1:]) for t in one.inputs],
        layers=layers,
        flops=flops,
        memory=memory,
        sweep=result,
        notes=[*target.notes, *flops.notes],
    )


def run_analyze(
    spec: str,
    opts: Sequence[str] = (),
    *,
    input_shape: str | None = None,
    device: str | None = None,
    precision: str = "fp32",
    optim: str = "sgd",
    memory_budget: str | None = None,
    out: str | Path | None = None,
    options: AnalyzeOptions | None = None,
    console: Console | None = None,
) -> tuple[AnalysisReport, list[Path]]:
    """What ``trainlab analyze`` does: build the target, analyse, print, save to ``out``
    (default ``./analyze-<name>/``). Returns the report and the files written.

    >>> run_analyze("lenet5", options=AnalyzeOptions(max_batch=64))   # doctest: +SKIP
    """
    from trainlab.analyze.report import print_report, save_report

    options = options or AnalyzeOptions()
    if memory_budget is not None:
        options.memory_budget = parse_size(memory_budget)
    target = resolve_target(
        spec, opts, input_shape=input_shape, device=device, precision=precision, optim=optim
    )
    report = analyze(target, options)
    console = console or Console()
    print_report(report, console)
    written = save_report(report, Path(out) if out else Path(f"analyze-{report.name}"))
    console.print("wrote " + ", ".join(str(p) for p in written))
    return report, written
