"""AlexNet (Krizhevsky et al., 2012): the ImageNet layer sizes and a 28×28 adaptation."""

from __future__ import annotations

import torch
from torch import nn

from trainlab.errors import ConfigError
from trainlab.models.examples import image_batch
from trainlab.models.registry import register_model

__all__ = ["AlexNet", "alexnet", "alexnet_small"]


def _conv_relu(c_in: int, c_out: int, k: int, stride: int = 1, pad: int = 0) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, k, stride, pad), nn.ReLU(inplace=True)]


def _features_imagenet(in_channels: int) -> nn.Sequential:
    # 224 → conv11/4 → 55 → pool → 27 → conv5 → 27 → pool → 13 → 3×conv3 → 13 → pool → 6
    return nn.Sequential(
        *_conv_relu(in_channels, 64, 11, 4, 2),
        nn.MaxPool2d(3, 2),
        *_conv_relu(64, 192, 5, pad=2),
        nn.MaxPool2d(3, 2),
        *_conv_relu(192, 384, 3, pad=1),
        *_conv_relu(384, 256, 3, pad=1),
        *_conv_relu(256, 256, 3, pad=1),
        nn.MaxPool2d(3, 2),
    )


def _features_small(in_channels: int) -> nn.Sequential:
    # 28 → conv3 → pool → 14 → conv3 → pool → 7 → 3×conv3 → pool → 3: same widths, small kernels,
    # because an 11×11 stride-4 filter would reduce a 28×28 image to 5×5 at once.
    return nn.Sequential(
        *_conv_relu(in_channels, 64, 3, pad=1),
        nn.MaxPool2d(2),
        *_conv_relu(64, 192, 3, pad=1),
        nn.MaxPool2d(2),
        *_conv_relu(192, 384, 3, pad=1),
        *_conv_relu(384, 256, 3, pad=1),
        *_conv_relu(256, 256, 3, pad=1),
        nn.MaxPool2d(2),
    )


def imagenet_side(image_size: int) -> int:
    """Side of the ImageNet-layout feature map at ``image_size`` (224 → 6, 96 → 2)."""
    side = (image_size + 2 * 2 - 11) // 4 + 1  # conv 11/4, pad 2
    for _ in range(3):  # three max pools 3/2 (the 5×5 and 3×3 convs keep the side)
        side = (side - 3) // 2 + 1
    if side < 1:
        raise ConfigError(f"model.image_size: {image_size} px is too small for AlexNet (≥ 63)")
    return side


class AlexNet(nn.Module):
    """Five conv layers → pool to ``pool``×``pool`` → three FC layers with dropout."""

    def __init__(
        self,
        num_classes: int,
        in_channels: int,
        small: bool,
        hidden: int,
        dropout: float,
        image_size: int,
        pool: int | None = 6,
    ) -> None:
        super().__init__()
        self.in_channels, self.image_size = in_channels, image_size
        self.features = _features_small(in_channels) if small else _features_imagenet(in_channels)
        # ImageNet: adaptive pool to `pool`×`pool` (6, as torchvision) so other sizes ≥ 63 work
        # too; pool=None: the map's own side at image_size (the FC width follows the input).
        # Small: three halvings, the map is image_size // 8 wide (3 for 28×28).
        if small:
            pool = max(1, image_size // 8)
        elif pool is None:
            pool = imagenet_side(image_size)
        self.avgpool = nn.AdaptiveAvgPool2d(pool)
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Dropout(dropout),
            nn.Linear(256 * pool * pool, hidden),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(hidden, hidden),
            nn.ReLU(inplace=True),
            nn.Linear(hidden, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x: (N, C, H, W) → (N, 256, pool, pool) → logits (N, num_classes)
        return self.classifier(self.avgpool(self.features(x)))

    def example_input(self, batch: int = 2) -> tuple[torch.Tensor, ...]:
        return image_batch(batch, self.in_channels, self.image_size)


@register_model("alexnet")
def alexnet(
    *,
    num_classes: int = 1000,
    in_channels: int = 3,
    hidden: int = 4096,
    dropout: float = 0.5,
    image_size: int = 224,
    pool: int | None = 6,
) -> nn.Module:
    """AlexNet at ImageNet sizes (61.1M parameters, as torchvision's); input (N, 3, 224, 224).

    The features are average-pooled to ``pool``×``pool`` (6, torchvision's layout: any input
    ≥ 63 px gives the same head); ``pool=None`` sizes the head for ``image_size`` instead
    (6×6 at 224, 2×2 at 96 px), as a network built for that resolution.
    """
    return AlexNet(num_classes, in_channels, False, hidden, dropout, image_size, pool)


@register_model("alexnet_small")
def alexnet_small(
    *,
    num_classes: int = 10,
    in_channels: int = 1,
    hidden: int = 1024,
    dropout: float = 0.5,
    image_size: int = 28,
) -> nn.Module:
    """AlexNet's widths with 3×3 kernels and 2×2 pooling for 28×28 single-channel images.

    The head is sized for ``image_size`` (a (image_size // 8)² map): 28 → 3×3, 56 → 7×7.
    """
    return AlexNet(num_classes, in_channels, True, hidden, dropout, image_size)
