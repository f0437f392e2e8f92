"""Showing an analysis: rich tables on the console; analysis.json, layers.txt, sweep.png on disk."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table

from trainlab.analyze.flops import CATEGORIES, FlopReport
from trainlab.analyze.layers import LayerTable
from trainlab.analyze.memory import MemoryReport
from trainlab.analyze.sweep import SweepResult

if TYPE_CHECKING:
    from trainlab.analyze.analysis import AnalysisReport

__all__ = ["format_bytes", "format_count", "print_report", "save_report"]


def format_bytes(n: float) -> str:
    """Bytes in binary units.

    >>> format_bytes(1536), format_bytes(3 * 2**30)
    ('1.5 KiB', '3.00 GiB')
    """
    for unit, size in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if abs(n) >= size:
            digits = 2 if unit == "GiB" else 1
            return f"{n / size:.{digits}f} {unit}"
    return f"{int(n)} B"


def format_count(n: float, unit: str = "") -> str:
    """Counts with SI prefixes.

    >>> format_count(11_689_512), format_count(3.6e9, "FLOPs"), format_count(12, "MACs")
    ('11.69 M', '3.60 GFLOPs', '12 MACs')
    """
    for prefix, size in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= size:
            return f"{n / size:.2f} {prefix}{unit}"
    return f"{int(n)} {unit}".rstrip()


def _trainable(params: int, trainable: int) -> str:
    if params == 0:
        return "-"
    return "yes" if trainable == params else ("no" if trainable == 0 else "partly")


def layers_table(t: LayerTable) -> Table:
    table = Table(title=f"layers (batch {t.batch}; totals count every layer)", show_lines=False)
    for col, justify in (("layer", "left"), ("type", "left"), ("output shape", "left")):
        table.add_column(col, justify=justify)  # type: ignore[arg-type]
    for col in ("params", "mult-adds", "trainable"):
        table.add_column(col, justify="right")
    for r in t.rows:
        leaf = r.name.rsplit(".", 1)[-1] or r.kind
        table.add_row(
            "  " * (r.depth - 1) + leaf,
            r.kind,
            str(r.output_shape),
            f"{r.params:,}" if r.params else "-",
            format_count(r.mult_adds) if r.mult_adds else "-",
            _trainable(r.params, r.trainable),
        )
    table.caption = (
        f"parameters {t.total_params:,} (trainable {t.trainable_params:,}, "
        f"frozen {t.frozen_params:,}), {format_bytes(t.param_bytes)}; "
        f"mult-adds {format_count(t.mult_adds)}"
    )
    return table


def flops_table(f: FlopReport) -> Table:
    table = Table(title=f"FLOPs (batch {f.batch}; 2 FLOPs = 1 multiply-add)")
    table.add_column("layer type")
    for col in ("forward", "share", "forward+backward"):
        table.add_column(col, justify="right")
    for cat in CATEGORIES:
        fwd, both = f.forward_by_type[cat], f.train_by_type.get(cat, 0)
        share = f"{fwd / f.forward:.1%}" if f.forward else "-"
        table.add_row(cat, format_count(fwd), share, format_count(both))
    table.add_row("total", format_count(f.forward), "100%", format_count(f.train), style="bold")
    table.caption = (
        f"per sample: {format_count(f.forward_per_sample, 'FLOPs')} = "
        f"{format_count(f.forward_per_sample / 2, 'MACs')} (torchvision's GFLOPS column: MACs)"
    )
    return table


def memory_table(m: MemoryReport) -> Table:
    table = Table(title=f"training memory at batch {m.batch}")
    table.add_column("part")
    table.add_column("bytes", justify="right")
    table.add_column("note")
    table.add_row("parameters", format_bytes(m.params), "")
    table.add_row("gradients", format_bytes(m.grads), "one per trainable parameter")
    table.add_row(
        "optimizer state",
        format_bytes(m.optimizer),
        f"{m.optimizer_per_weight:.2f}× the trainable weights (measured after one step)",
    )
    table.add_row("activations", format_bytes(m.activations), "saved for backward (estimated)")
    table.add_row("estimated total", format_bytes(m.estimated_total), "", style="bold")
    table.add_row("measured peak", format_bytes(m.measured_peak), m.measured_how + ", one step")
    table.add_row("inference peak", format_bytes(m.inference_peak),
                  "one eval forward without autograd (measured, same batch)")  # fmt: skip
    shares = [(k, v) for k, v in m.params_by_type.items() if v]
    if shares and m.params:
        split = ", ".join(f"{k} {format_bytes(v)} ({100 * v / m.params:.0f}%)" for k, v in shares)
        table.add_row("parameters by type", "", split)
    return table


def sweep_table(s: SweepResult) -> Table:
    table = Table(title=f"batch-size sweep (memory: {s.memory_how}; stopped: {s.stopped})")
    cols = ("batch", "infer samples/s", "infer ms", "train samples/s", "train ms", "memory")
    for col in cols:
        table.add_column(col, justify="right")
    if s.budget is not None:
        table.add_column("fits", justify="center")
    for r in s.rows:
        cells = [
            str(r.batch),
            f"{r.infer_per_s:,.0f}",
            f"{r.infer_s * 1e3:.2f}",
            f"{r.train_per_s:,.0f}",
            f"{r.train_s * 1e3:.2f}",
            format_bytes(r.memory),
        ]
        if s.budget is not None:
            cells.append("yes" if r.memory <= s.budget else "no")
        table.add_row(*cells)
    if s.budget is not None and s.largest_fit is not None:
        table.caption = f"largest batch within {format_bytes(s.budget)}: " + {
            "at least": f"at least {s.largest_fit} (every size fitted)",
            "extrapolated": f"{s.largest_fit} (extrapolated from the last two sizes)",
        }.get(s.largest_how, str(s.largest_fit))
    return table


def print_report(report: AnalysisReport, console: Console | None = None) -> None:
    """Print every section of ``report`` as rich tables.

    >>> print_report(analyze(model_target("mlp")))   # doctest: +SKIP
    """
    console = console or Console()
    shapes = ", ".join(str(tuple(s)) for s in report.input_shapes)
    console.print(
        f"[bold]{report.name}[/bold] ({report.kind}) on {report.device}, {report.precision}; "
        f"one sample: {shapes}"
    )
    console.print(layers_table(report.layers))
    console.print(flops_table(report.flops))
    console.print(memory_table(report.memory))
    if report.sweep is not None:
        console.print(sweep_table(report.sweep))
    for note in report.notes:
        console.print(f"note: {note}")


def save_report(report: AnalysisReport, out_dir: str | Path) -> list[Path]:
    """Write ``analysis.json`` (every figure), ``layers.txt`` (torchinfo) and ``sweep.png``."""
    from trainlab.analyze.plot import plot_sweep

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = [out / "analysis.json", out / "layers.txt"]
    written[0].write_text(json.dumps(report.to_dict(), indent=2) + "\n")
    written[1].write_text(report.layers.text + "\n")
    if report.sweep is not None and report.sweep.rows:
        written.append(plot_sweep(report.sweep, out / "sweep.png", title=report.name))
    return written
