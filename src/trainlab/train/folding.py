"""Evaluation with batch norm folded into the convolution before it.

In evaluation mode a BatchNorm is a fixed per-channel affine map, so ``BN(conv(x))`` equals a
single convolution with rescaled weights and a shifted bias: the same outputs (to float
rounding) with one pass over the activations fewer per layer. ``torch.fx`` traces the model to
find the pairs (a convolution whose only use is a BatchNorm); the folding itself is
``torch.nn.utils.fusion.fuse_conv_bn_eval``, applied to a copy of the model that keeps its class,
its ``forward`` and its other methods, with each folded BatchNorm replaced by ``nn.Identity``.

>>> fast = fold_batchnorm(model.eval())           # doctest: +SKIP
>>> torch.allclose(fast(x), model(x), atol=1e-5)  # doctest: +SKIP
True
"""

from __future__ import annotations

import copy
from collections import Counter
from typing import Any

from torch import nn

from trainlab.models.layers.pool import MaxPool2x2

__all__ = ["fold_batchnorm", "foldable_pairs", "replace_module", "trace_graph"]

_CONVS = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
_BNS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm)
_MAXPOOLS = (nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d, MaxPool2x2)


def _positive_scale(bn: nn.Module) -> bool:
    """Every channel's scale ``weight / sqrt(var + eps)`` is positive."""
    return bn.weight is None or bool((bn.weight > 0).all())


def _has_hooks(model: nn.Module) -> bool:
    return any(
        m._forward_hooks or m._forward_pre_hooks or m._backward_hooks for m in model.modules()
    )


def trace_graph(model: nn.Module) -> tuple[Any, dict[str, nn.Module], Counter[Any]] | None:
    """``model``'s ``torch.fx`` graph (trainlab's own max-pool kept as one module, as
    ``nn.MaxPool2d`` is), its modules by name and how often ``forward`` calls each; None when
    the model cannot be traced (data-dependent control flow…)."""
    import torch.fx

    class Tracer(torch.fx.Tracer):
        def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
            return isinstance(m, MaxPool2x2) or super().is_leaf_module(m, qualname)

    try:
        graph = Tracer().trace(model)
    except Exception:  # noqa: BLE001 - any tracing failure: nothing to transform
        return None
    calls = Counter(n.target for n in graph.nodes if n.op == "call_module")
    return graph, dict(model.named_modules()), calls


def foldable_pairs(model: nn.Module) -> list[tuple[str, str]]:
    """``(conv_name, bn_name)`` for each BatchNorm in eval mode with running statistics that
    takes the output of a plain convolution used nowhere else, each module called once by
    ``forward``. Empty when ``torch.fx`` cannot trace the model."""
    import torch.fx
    from torch.nn.utils.parametrize import is_parametrized

    traced = trace_graph(model)
    if traced is None:
        return []
    graph, modules, calls = traced
    pairs = []
    for node in graph.nodes:
        bn = modules.get(node.target) if node.op == "call_module" else None
        if type(bn) not in _BNS or bn.training or bn.running_mean is None or not node.args:
            continue
        prev = node.args[0]
        if not isinstance(prev, torch.fx.Node) or prev.op != "call_module":
            continue
        if type(modules.get(prev.target)) in _MAXPOOLS and _positive_scale(bn):
            # conv → max-pool → BN: a BN that scales every channel by a positive factor is
            # monotone per channel, so it commutes with the max and folds into the conv.
            pool, prev = prev, prev.args[0]
            single = len(pool.users) == 1 and calls[pool.target] == 1
            if not single or not isinstance(prev, torch.fx.Node) or prev.op != "call_module":
                continue
        conv = modules.get(prev.target)
        exact_conv = type(conv) in _CONVS  # subclasses may transform their weights
        if not exact_conv or is_parametrized(conv) or len(prev.users) != 1:
            continue
        if calls[prev.target] == 1 and calls[node.target] == 1:
            pairs.append((str(prev.target), str(node.target)))
    return pairs


def replace_module(model: nn.Module, name: str, module: nn.Module) -> None:
    parent, _, leaf = name.rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, leaf, module)


def fold_batchnorm(model: nn.Module) -> nn.Module:
    """An evaluation-mode copy of ``model`` with each BatchNorm that directly follows a
    convolution folded into it (see :func:`foldable_pairs`); ``model`` itself is not changed.

    The model comes back unchanged (the same object) when folding cannot help or could change
    behaviour: it has no BatchNorm, it is in training mode (batch statistics, not running
    ones), a module carries hooks (the copy's BatchNorms would no longer run them), or
    ``torch.fx`` cannot trace it.
    """
    if model.training or not any(type(m) in _BNS for m in model.modules()) or _has_hooks(model):
        return model
    pairs = foldable_pairs(model)
    if not pairs:
        return model
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    folded = copy.deepcopy(model)
    for conv_name, bn_name in pairs:
        conv, bn = folded.get_submodule(conv_name), folded.get_submodule(bn_name)
        replace_module(folded, conv_name, fuse_conv_bn_eval(conv, bn))
        replace_module(folded, bn_name, nn.Identity())
    return folded.eval()
