"""Normalisation factories for feature vectors (1d) and feature maps (2d).

Names: ``batch``, ``layer``, ``instance``, ``group``, ``none``, and the batch-norm variants of
the textbook's exercises:

- ``mean_only``: a "lite" batch norm that only subtracts the batch mean per channel;
- ``var_only``: one that only divides by the batch standard deviation (no centring);
- ``frozen_affine``: full batch norm with β = 0 and γ = 1 fixed (no trainable scale or shift).

``norm_act(norm, channels, act, position)`` gives the ``[norm, act]`` pair in either order, so a
model can place its normalisation before (the usual place) or after the activation.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from trainlab.errors import ConfigError
from trainlab.models.layers.act import make_act
from trainlab.registry import did_you_mean

__all__ = [
    "NORMS",
    "NORM_POSITIONS",
    "LiteBatchNorm",
    "make_norm1d",
    "make_norm2d",
    "norm_act",
]

NORMS = ("batch", "layer", "instance", "group", "none", "mean_only", "var_only", "frozen_affine")
NORM_POSITIONS = ("before_act", "after_act")
NormPosition = Literal["before_act", "after_act"]


class LiteBatchNorm(nn.Module):
    """Batch norm that only centres (``mode="mean_only"``) or only scales (``"var_only"``).

    Statistics are per channel (dim 1) over every other dim, from the batch in training and
    from running averages (momentum 0.1, as ``nn.BatchNorm``) in evaluation; a learnable
    per-channel γ (``weight``, 1) and β (``bias``, 0) follow, as in full batch norm.

    >>> bn = LiteBatchNorm(3, "mean_only")
    >>> y = bn(torch.randn(8, 3, 4, 4) + 5)
    >>> bool(y.mean(dim=(0, 2, 3)).abs().max() < 1e-5)
    True
    """

    def __init__(self, channels: int, mode: str, eps: float = 1e-5, momentum: float = 0.1):
        super().__init__()
        if mode not in ("mean_only", "var_only"):
            raise ValueError(f"mode must be 'mean_only' or 'var_only', got {mode!r}")
        self.channels, self.mode, self.eps, self.momentum = channels, mode, eps, momentum
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.register_buffer("running_mean", torch.zeros(channels))
        self.register_buffer("running_var", torch.ones(channels))

    def extra_repr(self) -> str:
        return f"{self.channels}, mode={self.mode}, eps={self.eps}"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x: (N, C) or (N, C, *spatial); statistics over every dim except C.
        dims = [0, *range(2, x.dim())]
        shape = (1, -1) + (1,) * (x.dim() - 2)
        if self.training:
            mean = x.mean(dim=dims)
            var = x.var(dim=dims, unbiased=False)
            with torch.no_grad():  # running variance unbiased, as nn.BatchNorm keeps it
                n = x.numel() // x.shape[1]
                self.running_mean.lerp_(mean.detach().to(self.running_mean.dtype), self.momentum)
                unbiased = var.detach() * (n / max(n - 1, 1))
                self.running_var.lerp_(unbiased.to(self.running_var.dtype), self.momentum)
        else:
            mean, var = self.running_mean, self.running_var
        if self.mode == "mean_only":
            y = x - mean.view(shape)
        else:
            y = x * torch.rsqrt(var.view(shape) + self.eps)
        return y * self.weight.view(shape) + self.bias.view(shape)


def _check(name: str) -> None:
    if name not in NORMS:
        raise ConfigError(
            f"unknown normalisation '{name}'{did_you_mean(name, list(NORMS))}; "
            f"valid: {', '.join(NORMS)}"
        )


def _groups(channels: int, preferred: int = 32) -> int:
    # Largest divisor of `channels` not above `preferred`: GroupNorm needs an exact split.
    for g in range(min(preferred, channels), 0, -1):
        if channels % g == 0:
            return g
    return 1


def _batch_variant(name: str, channels: int, bn: type[nn.Module]) -> nn.Module | None:
    if name == "batch":
        return bn(channels)
    if name == "frozen_affine":
        return bn(channels, affine=False)  # γ = 1, β = 0, not parameters
    if name in ("mean_only", "var_only"):
        return LiteBatchNorm(channels, name)
    return None


def make_norm2d(name: str, channels: int) -> nn.Module:
    """Normalisation over (N, C, H, W) feature maps with ``channels`` channels.

    >>> make_norm2d("frozen_affine", 8).affine
    False
    """
    _check(name)
    variant = _batch_variant(name, channels, nn.BatchNorm2d)
    if variant is not None:
        return variant
    if name == "layer":
        # LayerNorm over (C, H, W) without fixing H, W: GroupNorm with one group is equivalent.
        return nn.GroupNorm(1, channels)
    if name == "instance":
        return nn.InstanceNorm2d(channels, affine=True)
    if name == "group":
        return nn.GroupNorm(_groups(channels), channels)
    return nn.Identity()


def make_norm1d(name: str, features: int) -> nn.Module:
    """Normalisation over (N, F) feature vectors."""
    _check(name)
    variant = _batch_variant(name, features, nn.BatchNorm1d)
    if variant is not None:
        return variant
    if name == "layer":
        return nn.LayerNorm(features)
    if name == "instance":
        # Instance norm has no meaning for a flat vector; layer norm is its per-sample analogue.
        return nn.LayerNorm(features)
    if name == "group":
        return nn.GroupNorm(_groups(features), features)
    return nn.Identity()


def check_position(position: str) -> None:
    """A ``norm_position`` option must be ``before_act`` or ``after_act``."""
    if position not in NORM_POSITIONS:
        raise ConfigError(
            f"unknown norm_position '{position}'{did_you_mean(position, list(NORM_POSITIONS))}; "
            f"valid: {', '.join(NORM_POSITIONS)}"
        )


def norm_act(
    norm: str,
    channels: int,
    act: str,
    position: str = "before_act",
    dims: int = 2,
    placeholder: bool = False,
) -> list[nn.Module]:
    """``[norm, act]`` (``before_act``: conv → norm → act) or ``[act, norm]`` (``after_act``).

    ``dims`` 2 for feature maps, 1 for feature vectors; ``norm="none"`` leaves only the act,
    or ``[nn.Identity(), act]`` with ``placeholder`` (module indices, hence checkpoint keys,
    then do not depend on the norm being there).

    >>> [type(m).__name__ for m in norm_act("batch", 6, "relu", "after_act")]
    ['ReLU', 'BatchNorm2d']
    """
    check_position(position)
    layer = make_norm2d(norm, channels) if dims == 2 else make_norm1d(norm, channels)
    if isinstance(layer, nn.Identity):
        return [layer, make_act(act)] if placeholder else [make_act(act)]
    if position == "after_act":
        # An in-place activation before the norm is fine: nothing else reads its input.
        return [make_act(act), layer]
    return [layer, make_act(act)]
