"""GoogLeNet / Inception v1 (Szegedy et al., 2014), without the auxiliary classifiers.

Each Inception block runs four branches in parallel and concatenates them on channels::

    1×1 conv                       → c1
    1×1 conv → 3×3 conv            → c3
    1×1 conv → 5×5 conv            → c5   (torchvision uses 3×3 here; see ``five_by_five``)
    3×3 max pool → 1×1 conv        → cp
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from trainlab.models.examples import image_batch
from trainlab.models.registry import register_model

__all__ = ["GoogLeNet", "Inception", "googlenet", "googlenet_small"]

# (in, c1, c3_reduce, c3, c5_reduce, c5, pool_proj) for blocks 3a..5b; "M" = max pool 3/2.
INCEPTION_CFG: list[tuple[int, ...] | str] = [
    (192, 64, 96, 128, 16, 32, 32),
    (256, 128, 128, 192, 32, 96, 64),
    "M",
    (480, 192, 96, 208, 16, 48, 64),
    (512, 160, 112, 224, 24, 64, 64),
    (512, 128, 128, 256, 24, 64, 64),
    (512, 112, 144, 288, 32, 64, 64),
    (528, 256, 160, 320, 32, 128, 128),
    "M",
    (832, 256, 160, 320, 32, 128, 128),
    (832, 384, 192, 384, 48, 128, 128),
]


def conv(c_in: int, c_out: int, k: int, batch_norm: bool, stride: int = 1) -> nn.Sequential:
    """conv → [BN] → ReLU; with BN the conv has no bias (BN's shift replaces it)."""
    layers: list[nn.Module] = [nn.Conv2d(c_in, c_out, k, stride, k // 2, bias=not batch_norm)]
    if batch_norm:
        layers.append(nn.BatchNorm2d(c_out, eps=0.001))
    layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class Inception(nn.Module):
    """Four parallel branches, concatenated: (N, c_in, H, W) → (N, c1 + c3 + c5 + cp, H, W)."""

    def __init__(
        self,
        c_in: int,
        c1: int,
        c3r: int,
        c3: int,
        c5r: int,
        c5: int,
        cp: int,
        batch_norm: bool,
        five_by_five: bool,
    ) -> None:
        super().__init__()
        self.b1 = conv(c_in, c1, 1, batch_norm)
        self.b2 = nn.Sequential(conv(c_in, c3r, 1, batch_norm), conv(c3r, c3, 3, batch_norm))
        k5 = 5 if five_by_five else 3
        self.b3 = nn.Sequential(conv(c_in, c5r, 1, batch_norm), conv(c5r, c5, k5, batch_norm))
        self.b4 = nn.Sequential(
            nn.MaxPool2d(3, 1, 1, ceil_mode=True), conv(c_in, cp, 1, batch_norm)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.b1(x), self.b2(x), self.b3(x), self.b4(x)], dim=1)


class GoogLeNet(nn.Module):
    """Stem → Inception 3a,3b → pool → 4a..4e → pool → 5a,5b → GAP → dropout → FC."""

    def __init__(
        self,
        num_classes: int,
        in_channels: int,
        batch_norm: bool,
        five_by_five: bool,
        small: bool,
        width: float,
        dropout: float,
        image_size: int,
    ) -> None:
        super().__init__()
        self.in_channels, self.image_size = in_channels, image_size

        def w(c: int) -> int:  # channel count scaled by `width`
            return max(1, round(c * width))

        self.stem = self._stem(in_channels, w, batch_norm, small)
        blocks: list[nn.Module] = []
        for i, cfg in enumerate(INCEPTION_CFG):
            if isinstance(cfg, str):
                # The pool before 5a is 2×2 in torchvision (3×3 in 3→4); both halve H, W.
                blocks.append(nn.MaxPool2d(3 if i < 5 else 2, 2, ceil_mode=True))
            else:
                blocks.append(Inception(*(w(c) for c in cfg), batch_norm, five_by_five))
        self.inception = nn.Sequential(*blocks)
        self.head = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Dropout(dropout),
            nn.Linear(w(1024), num_classes),
        )

    @staticmethod
    def _stem(c_in: int, w: Callable[[int], int], batch_norm: bool, small: bool) -> nn.Sequential:
        if small:
            # 28×28: no early downsampling; one pool → 14×14 before the Inception blocks.
            first: list[nn.Module] = [conv(c_in, w(64), 3, batch_norm)]
        else:
            # 224 → conv7/2 → 112 → pool → 56
            first = [conv(c_in, w(64), 7, batch_norm, stride=2), nn.MaxPool2d(3, 2, ceil_mode=True)]
        return nn.Sequential(
            *first,
            conv(w(64), w(64), 1, batch_norm),
            conv(w(64), w(192), 3, batch_norm),
            nn.MaxPool2d(3, 2, ceil_mode=True),  # 56 → 28 (ImageNet) or 28 → 14 (small)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x: (N, C, 224, 224) → stem (N, 192, 28, 28) → Inception (N, 1024, 7, 7) → (N, classes)
        return self.head(self.inception(self.stem(x)))

    def example_input(self, batch: int = 2) -> tuple[torch.Tensor, ...]:
        return image_batch(batch, self.in_channels, self.image_size)


@register_model("googlenet")
def googlenet(
    *,
    num_classes: int = 1000,
    in_channels: int = 3,
    batch_norm: bool = True,
    five_by_five: bool = False,
    dropout: float = 0.2,
    image_size: int = 224,
) -> nn.Module:
    """GoogLeNet at ImageNet sizes, torchvision's layout (6.6M parameters, no auxiliary heads).

    ``batch_norm=False`` gives the 2014 network (biased convs, no BN); ``five_by_five=True`` uses
    the paper's 5×5 kernel in the third branch instead of torchvision's 3×3.
    """
    return GoogLeNet(
        num_classes, in_channels, batch_norm, five_by_five, False, 1.0, dropout, image_size
    )


@register_model("googlenet_small")
def googlenet_small(
    *,
    num_classes: int = 10,
    in_channels: int = 1,
    batch_norm: bool = True,
    five_by_five: bool = True,
    width: float = 0.5,
    dropout: float = 0.2,
    image_size: int = 28,
) -> nn.Module:
    """GoogLeNet for 28×28 images: 3×3 stem without stride, every width scaled by ``width``."""
    return GoogLeNet(
        num_classes, in_channels, batch_norm, five_by_five, True, width, dropout, image_size
    )
