"""Evaluation on the CPU with each convolution and the ReLU/GELU after it run as one kernel.

oneDNN, the CPU convolution library behind ``F.conv2d``, can apply the activation to each output
tile while it is still in cache (a "post-op"), instead of a second pass over the whole output:
for the default model's 32-channel 13×13 convolution at batch 1,000 in bf16, 3.4 ms against
6.7 ms for the convolution and ``F.gelu`` apart. :func:`fuse_conv_act` finds, with ``torch.fx``,
each ``nn.Conv2d`` whose only use is an ``nn.ReLU``/``nn.GELU`` (through ``nn.Identity`` left by
batch-norm folding) and gives back a copy where the pair is one :class:`ConvAct`.

:class:`ConvAct` takes the fused path only where it computes the same function: CPU tensors,
no gradient recorded, float32 or bfloat16, not while traced, compiled or exported; elsewhere it
runs the convolution and the activation as before. In float32 the outputs match to 1e-6; in
bf16 the fused kernel rounds once instead of twice (differences within bf16 rounding), as
batch-norm folding already does. The fused operator is PyTorch's own
``torch.ops.mkldnn._convolution_pointwise`` (what ``torch.compile`` uses on the CPU); a PyTorch
without it gets the model back unchanged.

>>> fast = fuse_conv_act(fold_batchnorm(model.eval()))  # doctest: +SKIP
"""

from __future__ import annotations

import copy
import functools
from typing import Any

import torch
from torch import nn

from trainlab.models.layers.pool import traced_or_recording
from trainlab.train.folding import replace_module, trace_graph

__all__ = ["ConvAct", "fuse_conv_act", "fusable_pairs"]


@functools.cache
def _fused_op() -> Any:
    try:
        return torch.ops.mkldnn._convolution_pointwise.default
    except (AttributeError, RuntimeError):
        return None


def _post_op(act: nn.Module) -> tuple[str, list[Any], str | None] | None:
    """oneDNN's name, scalars and algorithm for ``act``; None when it has no exact post-op."""
    if type(act) is nn.ReLU:
        return "relu", [], None
    if type(act) is nn.GELU:
        return "gelu", [None], act.approximate  # "none" (erf) or "tanh", as nn.GELU computes
    return None


class ConvAct(nn.Module):
    """``act(conv(x))``, as one oneDNN convolution with a post-op in CPU inference."""

    def __init__(self, conv: nn.Conv2d, act: nn.Module) -> None:
        super().__init__()
        post = _post_op(act)
        if post is None:
            raise ValueError(f"no fused form of {type(act).__name__}")
        self.conv, self.act = conv, act
        self.attr, self.scalars, self.algorithm = post

    def _fusable(self, x: torch.Tensor) -> bool:
        return (
            x.device.type == "cpu"
            and x.dim() == 4
            and x.dtype in (torch.float32, torch.bfloat16)
            and not traced_or_recording()
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        op = _fused_op()
        if op is None or not self._fusable(x):
            return self.act(self.conv(x))
        c = self.conv
        dtype = torch.get_autocast_dtype("cpu") if torch.is_autocast_enabled("cpu") else x.dtype
        if dtype not in (torch.float32, torch.bfloat16):
            return self.act(self.conv(x))
        bias = c.bias.to(dtype) if c.bias is not None else None
        return op(x.to(dtype), c.weight.to(dtype), bias, list(c.padding), list(c.stride),
                  list(c.dilation), c.groups, self.attr, self.scalars, self.algorithm)  # fmt: skip


def _plain_conv(m: Any) -> bool:
    return (
        type(m) is nn.Conv2d
        and m.padding_mode == "zeros"
        and isinstance(m.padding, tuple)  # not "same"/"valid": the fused op takes numbers
        and not torch.nn.utils.parametrize.is_parametrized(m)
    )


def fusable_pairs(model: nn.Module) -> list[tuple[str, str]]:
    """``(conv_name, act_name)`` for each ``nn.Conv2d`` whose output goes only (through
    ``nn.Identity`` modules) to an ``nn.ReLU``/``nn.GELU``, each module called once by
    ``forward``. Empty when ``torch.fx`` cannot trace the model."""
    import torch.fx

    traced = trace_graph(model)
    if traced is None:
        return []
    graph, modules, calls = traced

    def single(node: Any) -> bool:
        return len(node.users) == 1 and calls[node.target] == 1

    pairs = []
    for node in graph.nodes:
        if node.op != "call_module" or _post_op(modules.get(node.target)) is None:
            continue
        if not node.args or not single(node):
            continue
        prev = node.args[0]
        while (isinstance(prev, torch.fx.Node) and prev.op == "call_module"
               and type(modules.get(prev.target)) is nn.Identity and single(prev)):  # fmt: skip
            prev = prev.args[0]
        if isinstance(prev, torch.fx.Node) and prev.op == "call_module" and single(prev):
            if _plain_conv(modules.get(prev.target)):
                pairs.append((str(prev.target), str(node.target)))
    return pairs


def fuse_conv_act(model: nn.Module, *, inplace: bool = False) -> nn.Module:
    """A copy of ``model`` (``model`` itself with ``inplace``) whose conv → ReLU/GELU pairs are
    :class:`ConvAct` modules; ``model`` unchanged (the same object) when there is nothing to
    fuse, it is in training mode, a module carries hooks, or this PyTorch lacks the operator."""
    if model.training or _fused_op() is None or not torch.backends.mkldnn.is_available():
        return model
    if any(m._forward_hooks or m._forward_pre_hooks for m in model.modules()):
        return model
    pairs = fusable_pairs(model)
    if not pairs:
        return model
    out = model if inplace else copy.deepcopy(model)
    for conv_name, act_name in pairs:
        conv, act = out.get_submodule(conv_name), out.get_submodule(act_name)
        replace_module(out, conv_name, ConvAct(conv, act))
        replace_module(out, act_name, nn.Identity())
    return out
