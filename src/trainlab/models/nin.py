"""Network in Network (Lin et al., 2013): conv + two 1×1 convs per block, global average pool head.

There are no fully connected layers: the last NiN block outputs ``num_classes`` channels and global
average pooling turns each channel into one logit. The textbook's exercises are options:
``mlp_convs`` (the number of 1×1 convolutions per block), ``head="fc"`` (a fully connected layer
over the flattened last block instead of global average pooling), ``norm`` / ``norm_position``
(which normalisation ``batch_norm`` switches on, before or after each ReLU).
"""

from __future__ import annotations

import torch
from torch import nn

from trainlab.errors import ConfigError
from trainlab.models.examples import image_batch
from trainlab.models.layers.norm import check_position, norm_act
from trainlab.models.registry import register_model

__all__ = ["NiN", "nin", "nin_small"]


def nin_block(
    c_in: int,
    c_out: int,
    kernel: int,
    stride: int,
    pad: int,
    mlp_convs: int,
    batch_norm: bool,
    norm: str = "batch",
    norm_position: str = "before_act",
) -> nn.Sequential:
    """conv(k×k) → ReLU → [conv1×1 → ReLU] × mlp_convs: the per-pixel MLP ("mlpconv")."""
    layers: list[nn.Module] = []
    for i in range(1 + mlp_convs):
        k, s, p = (kernel, stride, pad) if i == 0 else (1, 1, 0)
        layers.append(nn.Conv2d(c_in if i == 0 else c_out, c_out, k, s, p))
        layers += norm_act(norm if batch_norm else "none", c_out, "relu", norm_position)
    return nn.Sequential(*layers)


def feature_side(image_size: int, kernels: list[tuple[int, int, int]]) -> int:
    """Side of the last block's map: each block is conv(k, s, p) then max pool 3/2."""
    side = image_size
    for k, s, p in kernels:
        side = (side + 2 * p - k) // s + 1
        side = (side - 3) // 2 + 1
    if side < 1:
        raise ConfigError(f"model.image_size: {image_size} px is too small for NiN's blocks")
    return side


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
        head: str = "gap",
        norm: str = "batch",
        norm_position: str = "before_act",
    ) -> None:
        super().__init__()
        if head not in ("gap", "fc"):
            raise ConfigError(f"model.head: 'gap' (global average pooling) or 'fc', got {head!r}")
        if mlp_convs < 0:
            raise ConfigError(f"model.mlp_convs: 0 or more 1×1 convolutions, got {mlp_convs}")
        check_position(norm_position)
        self.in_channels, self.image_size = in_channels, image_size
        layers: list[nn.Module] = []
        c = in_channels
        for w, (k, s, p) in zip(widths, kernels, strict=False):
            block = nin_block(c, w, k, s, p, mlp_convs, batch_norm, norm, norm_position)
            layers += [block, nn.MaxPool2d(3, 2)]
            c = w
        layers += [
            nn.Dropout(dropout),
            # The classifier block: no batch norm on the logits themselves.
            nin_block(c, num_classes, 3, 1, 1, mlp_convs, False),
        ]
        if head == "gap":
            layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
        else:  # the exercise's alternative: every position of every class map into one FC layer
            side = feature_side(image_size, kernels[: len(widths)])
            layers += [nn.Flatten(), nn.Linear(num_classes * side * side, num_classes)]
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
    head: str = "gap",
    norm: str = "batch",
    norm_position: str = "before_act",
) -> nn.Module:
    """NiN as in the textbook (224×224 input: 11×11/4, then 5×5, then 3×3 blocks).

    ``mlp_convs``: 1×1 convolutions per block; ``head``: ``gap`` or ``fc`` (flatten → linear,
    sized for ``image_size``); ``norm`` / ``norm_position`` apply where ``batch_norm`` is on.
    """
    kernels = _kernels(len(widths), [(11, 4, 0), (5, 1, 2)])
    return NiN(
        list(widths), kernels, num_classes, in_channels, mlp_convs, batch_norm, dropout,
        image_size, head, norm, norm_position,
    )  # fmt: skip


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
    head: str = "gap",
    norm: str = "batch",
    norm_position: str = "before_act",
) -> nn.Module:
    """NiN for 28×28 images: 5×5 then 3×3 blocks at stride 1; 28 → 13 → 6 → 2 before the head.

    Options as ``nin``: ``mlp_convs``, ``head`` (``gap``/``fc``), ``norm``, ``norm_position``.
    """
    kernels = _kernels(len(widths), [(5, 1, 2)])
    return NiN(
        list(widths), kernels, num_classes, in_channels, mlp_convs, batch_norm, dropout,
        image_size, head, norm, norm_position,
    )  # fmt: skip
