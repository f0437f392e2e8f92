"""Optimizer builders: ``builder(param_groups, *, lr, ...) -> torch.optim.Optimizer``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from trainlab.config.validate import validate_options
from trainlab.errors import ConfigError
from trainlab.registry import Registry

__all__ = ["OPTIMIZERS", "build_optimizer", "freeze", "param_groups"]

Groups = list[dict[str, Any]]
OPTIMIZERS: Registry[Callable[..., torch.optim.Optimizer]] = Registry(
    "optimizer", supplied=1, expected="def my_opt(param_groups, *, lr: float = 0.1) -> "
    "torch.optim.Optimizer, or an Optimizer class (params, lr=..., ...)",
)


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


def param_groups(
    model: nn.Module,
    decay_norm_and_bias: bool,
    lr: float | None = None,
    lr_mult: dict[str, float] | None = None,
) -> Groups:
    """Parameter groups of ``model``'s trainable parameters.

    Without ``decay_norm_and_bias``, 1-d parameters (norm scales, biases) get no weight decay.
    ``lr_mult`` maps parameter-name prefixes to LR multipliers (discriminative learning rates
    for fine-tuning: ``{"features.": 0.1}``); the longest matching prefix wins.
    """
    mult = lr_mult or {}
    buckets: dict[tuple[bool, float], list[nn.Parameter]] = {}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        prefixes = [k for k in mult if name.startswith(k)]
        factor = mult[max(prefixes, key=len)] if prefixes else 1.0
        decay = decay_norm_and_bias or p.ndim > 1
        buckets.setdefault((decay, factor), []).append(p)
    groups: Groups = []
    for (decay, factor), params in buckets.items():
        group: dict[str, Any] = {"params": params}
        if not decay:
            group["weight_decay"] = 0.0
        if factor != 1.0 and lr is not None:
            group["lr"] = lr * factor
        groups.append(group)
    return groups


def freeze(model: nn.Module, prefixes: list[str]) -> int:
    """Stop gradients for parameters whose names start with any of ``prefixes``; returns how
    many tensors were frozen. An unmatched prefix is a :class:`ConfigError`."""
    frozen = 0
    for prefix in prefixes:
        hits = [p for n, p in model.named_parameters() if n.startswith(prefix)]
        if not hits:
            names = sorted({n.split(".")[0] for n, _ in model.named_parameters()})
            raise ConfigError(
                f"optim.freeze: no parameter name starts with '{prefix}'; top-level modules: "
                f"{', '.join(names)}"
            )
        for p in hits:
            p.requires_grad_(False)
        frozen += len(hits)
    return frozen


def build_optimizer(
    model: nn.Module,
    name: str,
    options: dict[str, Any],
    decay_norm_and_bias: bool = False,
    lr_mult: dict[str, float] | None = None,
) -> torch.optim.Optimizer:
    """Optimizer ``name`` over ``model``'s trainable parameters.

    >>> opt = build_optimizer(nn.Linear(2, 2), "sgd", {"lr": 0.1, "momentum": 0.9})
    """
    fn = OPTIMIZERS.get(name, where="optim.name")
    opts = validate_options(fn, options, where="optim", entry=f"optimizer '{name}'")
    groups = param_groups(model, decay_norm_and_bias, opts.get("lr"), lr_mult)
    if not groups:
        raise ConfigError("optim: the model has no trainable parameters (all frozen?)")
    return fn(groups, **opts)
