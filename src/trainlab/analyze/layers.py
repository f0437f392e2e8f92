"""The layer table: output shape, parameters and multiply-adds of every layer, from torchinfo.

torchinfo runs one forward pass with hooks and records, per module call, the output size, the
parameter counts and the multiply-adds (its ``macs``, counted for leaf layers). Rows here keep
torchinfo's order (the order modules run) and add the dotted module path; parameters and
multiply-adds of a container are the sums over everything inside it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

__all__ = ["LayerRow", "LayerTable", "layer_table"]


@dataclass
class LayerRow:
    """One module call. ``params``/``trainable``/``mult_adds`` include the module's children."""

    name: str  # dotted path as in model.named_modules(), e.g. "layer1.0.conv1"
    kind: str  # class name, e.g. "Conv2d"
    depth: int  # 1 for the model's direct children
    output_shape: list[Any]  # e.g. [N, 64, 56, 56]; nested lists for tuple outputs
    params: int
    trainable: int
    mult_adds: int  # multiply-adds of one forward at the table's batch size


@dataclass
class LayerTable:
    """Totals over the whole model (shared parameters counted once) and the per-layer rows."""

    rows: list[LayerRow]
    batch: int
    total_params: int
    trainable_params: int
    frozen_params: int
    mult_adds: int  # whole forward at ``batch`` (torchinfo: sum over leaf layers)
    param_bytes: int
    text: str  # torchinfo's own printed summary

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out.pop("text")
        return out


def _subtree_macs(layers: list[Any]) -> list[int]:
    """Multiply-adds per row including everything below it (rows are in pre-order by depth)."""
    totals = [0] * len(layers)
    stack: list[int] = []  # indices of the open ancestors of the current row
    for i, info in enumerate(layers):
        while stack and layers[stack[-1]].depth >= info.depth:
            stack.pop()
        own = int(info.macs) if info.is_leaf_layer else 0
        totals[i] += own
        for j in stack:
            totals[j] += own
        stack.append(i)
    return totals


def _rows(model: nn.Module, layers: list[Any], depth: int) -> list[LayerRow]:
    paths = {id(m): name for name, m in model.named_modules()}
    macs = _subtree_macs(layers)
    return [
        LayerRow(
            name=paths.get(id(info.module), info.var_name),
            kind=info.class_name,
            depth=info.depth,
            output_shape=list(info.output_size),
            params=int(info.num_params),
            trainable=int(info.trainable_params),
            mult_adds=macs[i],
        )
        for i, info in enumerate(layers)
        if 1 <= info.depth <= depth
    ]


def layer_table(
    model: nn.Module, inputs: tuple[torch.Tensor, ...], *, depth: int = 3
) -> LayerTable:
    """Run torchinfo on ``model(*inputs)`` (eval mode, no gradients) and collect its rows.

    Rows deeper than ``depth`` are left out of ``rows`` (the totals still count them).

    >>> t = layer_table(nn.Sequential(nn.Linear(4, 3)), (torch.randn(2, 4),))
    >>> t.total_params, t.mult_adds, t.rows[0].output_shape  # torchinfo counts the bias adds
    (15, 30, [2, 3])
    """
    import torchinfo

    was_training = model.training
    stats = torchinfo.summary(
        model,
        input_data=list(inputs),
        depth=depth,
        col_names=("output_size", "num_params", "mult_adds", "trainable"),
        row_settings=("var_names",),
        mode="eval",
        verbose=0,
        device=next((p.device for p in model.parameters()), None),
    )
    model.train(was_training)
    rows = _rows(model, stats.summary_list, depth)
    # Totals from the parameters themselves: torchinfo 1.8 counts parameters held directly by
    # the root module (a ViT's position embedding, say) twice.
    params = list(model.parameters())  # shared tensors once
    total = sum(p.numel() for p in params)
    trainable = sum(p.numel() for p in params if p.requires_grad)
    return LayerTable(
        rows=rows,
        batch=int(inputs[0].shape[0]) if inputs and inputs[0].dim() else 1,
        total_params=total,
        trainable_params=trainable,
        frozen_params=total - trainable,
        mult_adds=int(stats.total_mult_adds),
        param_bytes=sum(p.numel() * p.element_size() for p in params),
        text=str(stats),
    )
