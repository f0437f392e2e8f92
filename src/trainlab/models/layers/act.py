"""Activation factory: ``make_act("gelu")``; names are recipe values (``model.act``)."""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from trainlab.errors import ConfigError
from trainlab.registry import did_you_mean

__all__ = ["ACTIVATIONS", "make_act"]

ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "relu": lambda: nn.ReLU(inplace=True),
    "relu6": lambda: nn.ReLU6(inplace=True),
    "hardswish": lambda: nn.Hardswish(inplace=True),
    "hardsigmoid": lambda: nn.Hardsigmoid(inplace=True),
    "leaky_relu": lambda: nn.LeakyReLU(0.01, inplace=True),
    "prelu": nn.PReLU,
    "elu": lambda: nn.ELU(inplace=True),
    "selu": lambda: nn.SELU(inplace=True),
    "gelu": nn.GELU,
    "silu": lambda: nn.SiLU(inplace=True),
    "swish": lambda: nn.SiLU(inplace=True),
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "mish": lambda: nn.Mish(inplace=True),
    "identity": nn.Identity,
}


def make_act(name: str) -> nn.Module:
    """A fresh activation module by name; unknown names list the valid ones."""
    try:
        return ACTIVATIONS[name]()
    except KeyError:
        names = sorted(ACTIVATIONS)
        raise ConfigError(
            f"unknown activation '{name}'{did_you_mean(name, names)}; valid: {', '.join(names)}"
        ) from None
