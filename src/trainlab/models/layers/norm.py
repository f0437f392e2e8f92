"""Normalisation factories for feature vectors (1d) and feature maps (2d).

Names: ``batch``, ``layer``, ``instance``, ``group``, ``none``.
"""

from __future__ import annotations

from torch import nn

from trainlab.errors import ConfigError
from trainlab.registry import did_you_mean

__all__ = ["NORMS", "make_norm1d", "make_norm2d"]

NORMS = ("batch", "layer", "instance", "group", "none")


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


def make_norm2d(name: str, channels: int) -> nn.Module:
    """Normalisation over (N, C, H, W) feature maps with ``channels`` channels."""
    _check(name)
    if name == "batch":
        return nn.BatchNorm2d(channels)
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
    if name == "batch":
        return nn.BatchNorm1d(features)
    if name == "layer":
        return nn.LayerNorm(features)
    if name == "instance":
        # Instance norm has no meaning for a flat vector; layer norm is its per-sample analogue.
        return nn.LayerNorm(features)
    if name == "group":
        return nn.GroupNorm(_groups(features), features)
    return nn.Identity()
