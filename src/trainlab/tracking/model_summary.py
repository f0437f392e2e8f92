"""``<run>/model_summary.txt``: torchinfo's layer table of the trained model, for the report.

Written after training, from one real batch of the run's data, so it can neither change the
training (no RNG drawn, no batch-norm statistics updated before or during the fit) nor fail it.
When torchinfo cannot run the model (a forward that takes more than a tensor, say), the file
holds the parameter count per top-level module instead.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

__all__ = ["model_summary", "write_model_summary", "parameter_table", "FILENAME"]

FILENAME = "model_summary.txt"


def parameter_table(model: nn.Module) -> str:
    """Parameters per top-level module, as aligned text (the fallback summary).

    >>> print(parameter_table(nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1))))
    module  type     parameters  trainable
    0       Linear            9          9
    2       Linear            4          4
    total                    13         13
    """
    rows = [("module", "type", "parameters", "trainable")]
    for name, child in model.named_children():
        params = list(child.parameters())
        if params:
            n = sum(p.numel() for p in params)
            t = sum(p.numel() for p in params if p.requires_grad)
            rows.append((name, type(child).__name__, f"{n:,}", f"{t:,}"))
    own = list(model.parameters(recurse=False))
    if own:
        n = sum(p.numel() for p in own)
        t = sum(p.numel() for p in own if p.requires_grad)
        rows.append(("(own)", type(model).__name__, f"{n:,}", f"{t:,}"))
    every = list(model.parameters())
    total = sum(p.numel() for p in every)
    trainable = sum(p.numel() for p in every if p.requires_grad)
    rows.append(("total", "", f"{total:,}", f"{trainable:,}"))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = [
        "  ".join(
            c.rjust(w) if i >= 2 else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths))
        ).rstrip()
        for r in rows
    ]
    return "\n".join(lines)


def model_summary(model: nn.Module, inputs: tuple[torch.Tensor, ...] | None) -> str:
    """torchinfo's table of ``model(*inputs)``, or :func:`parameter_table` if that fails."""
    if inputs:
        try:
            from trainlab.analyze.layers import layer_table

            # Forked RNG: nothing the summary does can shift a later random draw.
            with torch.random.fork_rng(devices=[]):
                return layer_table(model, inputs, depth=3).text
        except Exception as exc:  # noqa: BLE001 - any model torchinfo cannot run
            reason = f"{type(exc).__name__}: {exc}".splitlines()[0][:200]
            return f"(torchinfo could not run the model: {reason})\n\n{parameter_table(model)}"
    return parameter_table(model)


def first_inputs(data: Any, n: int = 2) -> tuple[torch.Tensor, ...] | None:
    """The first ``n`` inputs of the first evaluation batch (test, else val, else train)."""
    for split in ("test", "val", "train"):
        if data.sizes.get(split, 0) > 0:
            x, _ = next(iter(data.loader(split).iter_epoch(0)))
            graph = getattr(x, "graph", None)  # graph data: the model takes (x, edge_index)
            if graph is not None and isinstance(getattr(graph, "edge_index", None), torch.Tensor):
                return (graph.x, graph.edge_index)
            if isinstance(x, torch.Tensor):
                return (x[:n],)
            return None
    return None


def write_model_summary(model: nn.Module, data: Any, run_dir: str | Path) -> Path:
    """Write ``model_summary.txt`` into ``run_dir``; never raises for a model it cannot run."""
    try:
        inputs = first_inputs(data)
    except Exception:  # noqa: BLE001 - an odd loader only loses the torchinfo table
        inputs = None
    path = Path(run_dir) / FILENAME
    path.write_text(model_summary(model, inputs) + "\n")
    return path
