"""Stochastic depth (drop a residual branch per sample) and DropConnect (drop weights)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["DropConnectLinear", "StochasticDepth", "drop_path"]


def drop_path(x: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """Zero whole samples of a residual branch with probability ``p`` (Huang et al., 2016).

    Survivors are scaled by 1/(1-p) so the expected value is unchanged and evaluation can use the
    branch as is: in eval mode (or with p == 0) this is the identity.
    """
    if not training or p == 0.0:
        return x
    keep = 1.0 - p
    # One Bernoulli draw per sample, broadcast over every other dim: (N, 1, 1, ...).
    shape = (x.shape[0],) + (1,) * (x.dim() - 1)
    mask = x.new_empty(shape).bernoulli_(keep)
    return x * mask / keep


class StochasticDepth(nn.Module):
    """Module form of :func:`drop_path`; place it on a residual branch before the addition."""

    def __init__(self, p: float = 0.0) -> None:
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"stochastic depth probability must be in [0, 1), got {p}")
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return drop_path(x, self.p, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}"


class DropConnectLinear(nn.Linear):
    """A linear layer whose *weights* (not activations) are dropped in training (Wan et al., 2013).

    Each forward pass in training samples a fresh mask over the (out, in) weight matrix and
    rescales by 1/(1-p); evaluation uses the full weight matrix.
    """

    def __init__(self, in_features: int, out_features: int, p: float = 0.5, bias: bool = True):
        super().__init__(in_features, out_features, bias=bias)
        if not 0.0 <= p < 1.0:
            raise ValueError(f"DropConnect probability must be in [0, 1), got {p}")
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight = F.dropout(self.weight, self.p, self.training)
        return F.linear(x, weight, self.bias)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, p={self.p}"
