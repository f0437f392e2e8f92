"""Squeeze-and-excitation (Hu et al., 2018): gate each channel by a function of all channels.

``x · gate(fc2(act(fc1(GAP(x)))))``: global average pooling squeezes (N, C, H, W) to (N, C, 1, 1),
a bottleneck of ``squeeze`` channels mixes the channels, and the gate (sigmoid, or MobileNetV3's
cheaper hard sigmoid) gives one weight in (0, 1) per channel and sample. Costs C·H·W multiplies
plus 2·C·squeeze weights: almost nothing next to the convolutions it follows.
"""

from __future__ import annotations

import torch
from torch import nn

from trainlab.models.layers.act import make_act

__all__ = ["SqueezeExcite"]


class SqueezeExcite(nn.Module):
    """Channel gating; the names ``fc1``/``fc2`` (1×1 convs with bias) are torchvision's.

    >>> se = SqueezeExcite(64, 16, act="silu", gate="sigmoid")
    >>> se(torch.randn(2, 64, 7, 7)).shape
    torch.Size([2, 64, 7, 7])
    """

    def __init__(
        self, channels: int, squeeze: int, act: str = "relu", gate: str = "sigmoid"
    ) -> None:
        super().__init__()
        if squeeze < 1:
            raise ValueError(f"squeeze-excitation needs ≥ 1 squeeze channel, got {squeeze}")
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(channels, squeeze, 1)
        self.act = make_act(act)
        self.fc2 = nn.Conv2d(squeeze, channels, 1)
        self.gate = make_act(gate)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # (N, C, H, W) → (N, C, 1, 1) weights, broadcast over H and W
        scale = self.gate(self.fc2(self.act(self.fc1(self.pool(x)))))
        return x * scale
