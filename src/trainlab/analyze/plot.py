"""The batch-size sweep as a PNG: throughput, latency and memory against batch size."""

from __future__ import annotations

from pathlib import Path

from trainlab.analyze.sweep import SweepResult

__all__ = ["plot_sweep"]

_MIB = 2**20


def plot_sweep(result: SweepResult, path: str | Path, title: str = "") -> Path:
    """Write three panels (samples/s, ms per batch, MiB per training step; log-2 batch axis).

    >>> plot_sweep(result, "analyze-mlp/sweep.png", "mlp")   # doctest: +SKIP
    """
    # A bare Figure (no pyplot): no global backend switch, no window, no display needed.
    from matplotlib.figure import Figure
    from matplotlib.ticker import ScalarFormatter

    batches = [r.batch for r in result.rows]
    fig = Figure(figsize=(14, 4.2))
    ax_tp, ax_lat, ax_mem = fig.subplots(1, 3)
    ax_tp.plot(batches, [r.infer_per_s for r in result.rows], "o-", label="inference")
    ax_tp.plot(batches, [r.train_per_s for r in result.rows], "s-", label="training step")
    ax_tp.set(ylabel="samples / s", title="throughput")
    ax_lat.plot(batches, [r.infer_s * 1e3 for r in result.rows], "o-", label="inference")
    ax_lat.plot(batches, [r.train_s * 1e3 for r in result.rows], "s-", label="training step")
    ax_lat.set(ylabel="ms per batch", title="latency")
    ax_mem.plot(batches, [r.memory / _MIB for r in result.rows], "o-", label=result.memory_how)
    if any(r.measured for r in result.rows) and result.memory_how == "estimated":
        measured = [r.measured / _MIB for r in result.rows]
        ax_mem.plot(batches, measured, "x--", label="measured RSS growth")
    top = max((r.memory for r in result.rows), default=0)
    if result.budget is not None and result.budget <= 4 * top:  # else it flattens the curve
        ax_mem.axhline(result.budget / _MIB, color="red", ls=":", label="budget")
    ax_mem.set(ylabel="MiB", title="training-step memory")
    for ax in (ax_tp, ax_lat, ax_mem):
        ax.set_xscale("log", base=2)
        ax.xaxis.set_major_formatter(ScalarFormatter())  # 1, 2, 4 … rather than 2^0, 2^1 …
        ax.set_xlabel("batch size")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    ax_tp.set_yscale("log")
    ax_lat.set_yscale("log")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    return out
