"""DenseNet (Huang et al., 2016): each layer sees the concatenation of all earlier feature maps.

A dense block of L layers with growth rate k turns c channels into c + L·k; a transition layer
(BN → ReLU → 1×1 conv → 2×2 average pool) then compresses channels by ``compression`` and halves
H and W. DenseNet-BC layers put a 1×1 "bottleneck" conv (``bn_size``·k channels) before the 3×3.
"""

from __future__ import annotations

import torch
from torch import nn

from trainlab.errors import ConfigError
from trainlab.models.examples import image_batch
from trainlab.models.layers.checkpointing import checkpointable, run_blocks
from trainlab.models.registry import register_model

__all__ = ["DenseNet", "densenet", "densenet_small"]


def _bn_relu_conv(c_in: int, c_out: int, k: int) -> list[nn.Module]:
    return [
        nn.BatchNorm2d(c_in),
        nn.ReLU(inplace=True),
        nn.Conv2d(c_in, c_out, k, 1, k // 2, bias=False),
    ]


class DenseLayer(nn.Module):
    """(N, c, H, W) → (N, c + growth, H, W): new features concatenated to the input."""

    def __init__(self, c_in: int, growth: int, bn_size: int, bottleneck: bool, dropout: float):
        super().__init__()
        if bottleneck:
            layers = _bn_relu_conv(c_in, bn_size * growth, 1) + _bn_relu_conv(
                bn_size * growth, growth, 3
            )
        else:
            layers = _bn_relu_conv(c_in, growth, 3)
        self.body = nn.Sequential(*layers, nn.Dropout(dropout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x, self.body(x)], dim=1)


@checkpointable
class DenseNet(nn.Module):
    """Stem → [dense block → transition] × (B − 1) → dense block → BN → ReLU → GAP → FC."""

    def __init__(
        self,
        growth_rate: int,
        block_config: list[int],
        num_init_features: int,
        bn_size: int,
        compression: float,
        bottleneck: bool,
        dropout: float,
        num_classes: int,
        in_channels: int,
        small_input: bool,
        image_size: int,
        transition_pool: str = "avg",
    ) -> None:
        super().__init__()
        if transition_pool not in ("avg", "max"):
            raise ConfigError(f"model.transition_pool: 'avg' or 'max', got {transition_pool!r}")
        self.in_channels, self.image_size = in_channels, image_size
        pool = nn.AvgPool2d if transition_pool == "avg" else nn.MaxPool2d
        c = num_init_features
        if small_input:  # 28×28: 3×3 stride-1 stem, no pooling
            layers: list[nn.Module] = [nn.Conv2d(in_channels, c, 3, 1, 1, bias=False)]
        else:  # 224 → conv7/2 → 112 → BN → ReLU → max pool 3/2 → 56
            layers = [
                nn.Conv2d(in_channels, c, 7, 2, 3, bias=False),
                nn.BatchNorm2d(c),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(3, 2, 1),
            ]
        for i, n_layers in enumerate(block_config):
            for _ in range(n_layers):
                layers.append(DenseLayer(c, growth_rate, bn_size, bottleneck, dropout))
                c += growth_rate
            if i < len(block_config) - 1:  # transition: compress channels, halve resolution
                c_out = int(c * compression)
                layers += _bn_relu_conv(c, c_out, 1) + [pool(2, 2)]
                c = c_out
        layers += [nn.BatchNorm2d(c), nn.ReLU(inplace=True)]
        self.features = nn.Sequential(*layers)
        self.grad_checkpointing = False  # recompute dense layers' activations in backward
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x: (N, C, H, W) → (N, c_final, H / 32, W / 32) (ImageNet stem) → (N, num_classes)
        x = run_blocks(self.features, x, self.grad_checkpointing, only=(DenseLayer,))
        return self.head(x)

    def example_input(self, batch: int = 2) -> tuple[torch.Tensor, ...]:
        return image_batch(batch, self.in_channels, self.image_size)


# key: (growth rate, layers per dense block, stem width) — torchvision's configurations.
DENSENET_CFGS: dict[str, tuple[int, list[int], int]] = {
    "densenet121": (32, [6, 12, 24, 16], 64),
    "densenet161": (48, [6, 12, 36, 24], 96),
    "densenet169": (32, [6, 12, 32, 32], 64),
    "densenet201": (32, [6, 12, 48, 32], 64),
}


def _named(key: str, growth: int, blocks: list[int], init: int) -> None:
    def build(
        *,
        num_classes: int = 1000,
        in_channels: int = 3,
        dropout: float = 0.0,
        small_input: bool = False,
        image_size: int = 224,
    ) -> nn.Module:
        return DenseNet(
            growth,
            blocks,
            init,
            4,
            0.5,
            True,
            dropout,
            num_classes,
            in_channels,
            small_input,
            image_size,
        )

    build.__name__ = key
    build.__doc__ = f"{key}-BC: growth {growth}, blocks {blocks}, stem {init}; as torchvision's."
    register_model(key)(build)


for _key, (_g, _b, _i) in DENSENET_CFGS.items():
    _named(_key, _g, _b, _i)


@register_model("densenet")
def densenet(
    *,
    growth_rate: int = 32,
    block_config: list[int] = [6, 12, 24, 16],  # noqa: B006 - never mutated
    num_init_features: int = 64,
    bn_size: int = 4,
    compression: float = 0.5,
    bottleneck: bool = True,
    dropout: float = 0.0,
    num_classes: int = 1000,
    in_channels: int = 3,
    small_input: bool = False,
    image_size: int = 224,
    transition_pool: str = "avg",
) -> nn.Module:
    """Any DenseNet: growth rate, layers per block, compression, BC bottleneck on/off;
    ``transition_pool``: ``avg`` (the paper's) or ``max`` in the transition layers.

    Example: ``create_model("densenet", block_config=[2, 2], transition_pool="max")``.
    """
    return DenseNet(
        growth_rate,
        list(block_config),
        num_init_features,
        bn_size,
        compression,
        bottleneck,
        dropout,
        num_classes,
        in_channels,
        small_input,
        image_size,
        transition_pool,
    )


@register_model("densenet_small")
def densenet_small(
    *,
    growth_rate: int = 12,
    block_config: list[int] = [6, 6, 6],  # noqa: B006 - never mutated
    num_classes: int = 10,
    in_channels: int = 1,
    dropout: float = 0.0,
    image_size: int = 28,
    transition_pool: str = "avg",
) -> nn.Module:
    """DenseNet-BC for 28×28 images: growth 12, three blocks (28 → 14 → 7), stem of 2k channels.

    ``transition_pool``: ``avg`` (the paper's) or ``max`` between the dense blocks.
    """
    return DenseNet(
        growth_rate,
        list(block_config),
        2 * growth_rate,
        4,
        0.5,
        True,
        dropout,
        num_classes,
        in_channels,
        True,
        image_size,
        transition_pool,
    )
