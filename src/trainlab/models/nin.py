"""Network in Network (Lin et al., 2013): conv + two 1×1 convs per block, global average pool head.

There are no fully connected layers: the last NiN block outputs ``num_classes`` channels and global
average pooling turns each channel into one logit.
"""

from __future__ import annotations

import torch
from torch import nn

from trainlab.models.examples import image_batch
from trainlab.models.registry import register_model

__all__ = ["NiN", "nin", "nin_small"]


def nin_block(
    c_in: int, c_out: int, kernel: int, stride: int, pad: int, mlp_convs: int, batch_norm: bool
) -> nn.Sequential:
    """conv(k×k) → ReLU → [conv1×1 → ReLU] × mlp_convs: the per-pixel MLP ("mlpconv")."""
    layers: list[nn.Module] = []
    for i in range(1 + mlp_convs):
        k, s, p = (kernel, stride, pad) if i == 0 else (1, 1, 0)
        layers.append(nn.Conv2d(c_in if i == 0 else c_out, c_out, k, s, p))
        if batch_norm:
            layers.append(nn.BatchNorm2d(c_out))
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class NiN(nn.Module):
    """[NiN block → max pool 3/2] × len(widths) → dropout → NiN block(num_classes) → GAP."""

    def __init__(
        self,
        widths: list[int],
        kernels: list[tuple[int, int, int]],
        num_classes: int,
        in_channels: int,
        mlp_convs: int,
        batch_norm: bool,
        dropout: float,
        image_size: int,
    ) -> None:
        super().__init__()
        self.in_channels, self.image_size = in_channels, image_size
        layers: list[nn.Module] = []
        c = in_channels
        for w, (k, s, p) in zip(widths, kernels, strict=False):
            layers += [nin_block(c, w, k, s, p, mlp_convs, batch_norm), nn.MaxPool2d(3, 2)]
            c = w
        layers += [
            nn.Dropout(dropout),
            # The classifier block: no batch norm on the logits themselves.
            nin_block(c, num_classes, 3, 1, 1, mlp_convs, False),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
        ]
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x: (N, C, H, W) → (N, num_classes, h, w) → global average → (N, num_classes)
        return self.net(x)

    def example_input(self, batch: int = 2) -> tuple[torch.Tensor, ...]:
        return image_batch(batch, self.in_channels, self.image_size)


def _kernels(n: int, first: list[tuple[int, int, int]]) -> list[tuple[int, int, int]]:
    # Blocks beyond the listed ones use 3×3, stride 1, pad 1.
    return (first + [(3, 1, 1)] * n)[:n]


@register_model("nin")
def nin(
    *,
    widths: list[int] = [96, 256, 384],  # noqa: B006 - never mutated
    num_classes: int = 10,
    in_channels: int = 1,
    mlp_convs: int = 2,
    batch_norm: bool = False,
    dropout: float = 0.5,
    image_size: int = 224,
) -> nn.Module:
    """NiN as in the textbook (224×224 input: 11×11/4, then 5×5, then 3×3 blocks)."""
    kernels = _kernels(len(widths), [(11, 4, 0), (5, 1, 2)])
    return NiN(
        list(widths), kernels, num_classes, in_channels, mlp_convs, batch_norm, dropout, image_size
    )


@register_model("nin_small")
def nin_small(
    *,
    widths: list[int] = [64, 128, 256],  # noqa: B006 - never mutated
    num_classes: int = 10,
    in_channels: int = 1,
    mlp_convs: int = 2,
    batch_norm: bool = True,
    dropout: float = 0.3,
    image_size: int = 28,
) -> nn.Module:
    """NiN for 28×28 images: 5×5 then 3×3 blocks at stride 1; 28 → 13 → 6 → 2 before the head."""
    kernels = _kernels(len(widths), [(5, 1, 2)])
    return NiN(
        list(widths), kernels, num_classes, in_channels, mlp_convs, batch_norm, dropout, image_size
    )
