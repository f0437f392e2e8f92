"""Optimizer builders: ``builder(param_groups, *, lr, ...) -> torch.optim.Optimizer``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from trainlab.config.validate import validate_options
from trainlab.registry import Registry

__all__ = ["OPTIMIZERS", "build_optimizer", "param_groups"]

Groups = list[dict[str, Any]]
OPTIMIZERS: Registry[Callable[..., torch.optim.Optimizer]] = Registry("optimizer")


@OPTIMIZERS.register("sgd")
def sgd(
    groups: Groups,
    *,
    lr: float,
    momentum: float = 0.0,
    nesterov: bool = False,
    weight_decay: float = 0.0,
    dampening: float = 0.0,
) -> torch.optim.Optimizer:
    return torch.optim.SGD(
        groups,
        lr=lr,
        momentum=momentum,
        nesterov=nesterov,
        weight_decay=weight_decay,
        dampening=dampening,
    )


@OPTIMIZERS.register("adam")
def adam(
    groups: Groups,
    *,
    lr: float = 1e-3,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    amsgrad: bool = False,
) -> torch.optim.Optimizer:
    return torch.optim.Adam(
        groups, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad
    )


@OPTIMIZERS.register("adamw")
def adamw(
    groups: Groups,
    *,
    lr: float = 1e-3,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
    weight_decay: float = 0.01,
    amsgrad: bool = False,
) -> torch.optim.Optimizer:
    return torch.optim.AdamW(
        groups, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad
    )


@OPTIMIZERS.register("rmsprop")
def rmsprop(
    groups: Groups,
    *,
    lr: float = 1e-2,
    alpha: float = 0.99,
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    momentum: float = 0.0,
    centered: bool = False,
) -> torch.optim.Optimizer:
    return torch.optim.RMSprop(
        groups,
        lr=lr,
        alpha=alpha,
        eps=eps,
        weight_decay=weight_decay,
        momentum=momentum,
        centered=centered,
    )


@OPTIMIZERS.register("adagrad")
def adagrad(
    groups: Groups, *, lr: float = 1e-2, weight_decay: float = 0.0, eps: float = 1e-10
) -> torch.optim.Optimizer:
    return torch.optim.Adagrad(groups, lr=lr, weight_decay=weight_decay, eps=eps)


@OPTIMIZERS.register("nadam")
def nadam(
    groups: Groups,
    *,
    lr: float = 2e-3,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
    weight_decay: float = 0.0,
) -> torch.optim.Optimizer:
    return torch.optim.NAdam(groups, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)


def param_groups(model: nn.Module, decay_norm_and_bias: bool) -> Groups:
    """One group, or two with weight decay switched off for 1-d parameters (norms, biases)."""
    params = [p for p in model.parameters() if p.requires_grad]
    if decay_norm_and_bias:
        return [{"params": params}]
    decay = [p for p in params if p.ndim > 1]
    no_decay = [p for p in params if p.ndim <= 1]
    groups: Groups = [{"params": decay}]
    if no_decay:
        groups.append({"params": no_decay, "weight_decay": 0.0})
    return groups


def build_optimizer(
    model: nn.Module, name: str, options: dict[str, Any], decay_norm_and_bias: bool = False
) -> torch.optim.Optimizer:
    """Optimizer ``name`` over ``model``'s trainable parameters.

    >>> opt = build_optimizer(nn.Linear(2, 2), "sgd", {"lr": 0.1, "momentum": 0.9})
    """
    fn = OPTIMIZERS.get(name, where="optim.name")
    opts = validate_options(fn, options, where="optim", entry=f"optimizer '{name}'")
    return fn(param_groups(model, decay_norm_and_bias), **opts)
