"""ResNet (He et al., 2015) and its textbook variants, in one parametrisation.

- ``block``: ``basic`` (two 3×3 convs; ResNet-18/34) or ``bottleneck`` (1×1 → 3×3 → 1×1 with 4×
  expansion; ResNet-50/101/152). Stride sits on the 3×3 conv ("ResNet v1.5", as torchvision).
- ``groups`` / ``width_per_group``: grouped 3×3 convolutions — ResNeXt (Xie et al., 2016);
  ``resnext50_32x4d`` is 32 groups of width 4 at the first stage.
- ``preact``: pre-activation units BN → ReLU → conv (He et al., 2016, "Identity mappings").
- ``stochastic_depth``: drop probability of the last block; block l of L drops its residual
  branch with probability p·l/L in training (Huang et al., 2016); identity in eval.
- ``small_input``: 3×3 stride-1 stem without max pool, for 28×28 / 32×32 images.

With the defaults each named builder has exactly torchvision's parameter count.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from trainlab.models.examples import image_batch
from trainlab.models.layers import StochasticDepth
from trainlab.models.layers.checkpointing import checkpointable, run_blocks
from trainlab.models.registry import register_model

__all__ = ["ResNet", "ResidualBlock", "resnet"]

# One conv of a residual body: (c_in, c_out, kernel, stride, groups).
ConvSpec = tuple[int, int, int, int, int]
BlockKind = Literal["basic", "bottleneck"]


class ResidualBlock(nn.Module):
    """``out = act(shortcut(x) + drop(body(x)))``; ``body`` is a chain of conv specs.

    Post-activation (original): conv → BN → ReLU … conv → BN, ReLU after the addition.
    Pre-activation: BN → ReLU → conv …, nothing after the addition, so the identity path is clean.
    """

    def __init__(self, convs: list[ConvSpec], preact: bool, drop: float) -> None:
        super().__init__()
        c_in, c_out = convs[0][0], convs[-1][1]
        stride = max(spec[3] for spec in convs)
        self.preact = preact
        layers: list[nn.Module] = []
        for i, (ci, co, k, s, g) in enumerate(convs):
            conv = nn.Conv2d(ci, co, k, s, k // 2, groups=g, bias=False)
            if preact:  # the first BN → ReLU lives in self.pre (it also feeds the projection)
                layers += ([nn.BatchNorm2d(ci), nn.ReLU(inplace=True)] if i else []) + [conv]
            else:
                layers += [conv, nn.BatchNorm2d(co)]
                layers += [nn.ReLU(inplace=True)] if i < len(convs) - 1 else []
        self.pre = nn.Sequential(nn.BatchNorm2d(c_in), nn.ReLU()) if preact else nn.Identity()
        self.body = nn.Sequential(*layers)
        self.project = stride != 1 or c_in != c_out
        shortcut: list[nn.Module] = []
        if self.project:  # 1×1 conv matches channels and resolution of the body's output
            shortcut = [nn.Conv2d(c_in, c_out, 1, stride, bias=False)]
            shortcut += [] if preact else [nn.BatchNorm2d(c_out)]
        self.shortcut = nn.Sequential(*shortcut)
        self.drop = StochasticDepth(drop)
        self.act = nn.Identity() if preact else nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.pre(x)
        skip = self.shortcut(y if self.preact else x) if self.project else x
        return self.act(skip + self.drop(self.body(y)))


def block_convs(
    kind: BlockKind, c_in: int, planes: int, stride: int, groups: int, width_per_group: int
) -> list[ConvSpec]:
    """Conv specs of one block; ``planes`` is the stage width before expansion."""
    if kind == "basic":
        return [(c_in, planes, 3, stride, 1), (planes, planes, 3, 1, 1)]
    width = int(planes * width_per_group / 64) * groups  # ResNeXt: groups × width per group
    return [(c_in, width, 1, 1, 1), (width, width, 3, stride, groups), (width, planes * 4, 1, 1, 1)]


@checkpointable
class ResNet(nn.Module):
    """Stem → four stages (widths w, 2w, 4w, 8w; stride 2 from the second) → GAP → FC."""

    def __init__(
        self,
        block: BlockKind,
        layers: list[int],
        num_classes: int,
        in_channels: int,
        groups: int,
        width_per_group: int,
        width: int,
        preact: bool,
        stochastic_depth: float,
        small_input: bool,
        image_size: int,
    ) -> None:
        super().__init__()
        self.in_channels, self.image_size = in_channels, image_size
        self.stem = self._stem(in_channels, width, small_input)
        expansion = 1 if block == "basic" else 4
        total, index, c = sum(layers), 0, width
        stages: list[nn.Module] = []
        for s, depth in enumerate(layers):
            blocks: list[nn.Module] = []
            for i in range(depth):
                planes, stride = width * 2**s, 2 if s > 0 and i == 0 else 1
                convs = block_convs(block, c, planes, stride, groups, width_per_group)
                index += 1  # linear decay rule: deeper blocks are dropped more often
                blocks.append(ResidualBlock(convs, preact, stochastic_depth * index / total))
                c = planes * expansion
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.Sequential(*stages)
        self.grad_checkpointing = False  # recompute each block's activations in backward
        # Pre-activation nets end with one more BN → ReLU (the last unit left its output raw).
        final = [nn.BatchNorm2d(c), nn.ReLU(inplace=True)] if preact else []
        self.head = nn.Sequential(
            *final, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, num_classes)
        )
        for m in self.modules():
            if isinstance(m, nn.Conv2d):  # He initialisation, as in the paper and torchvision
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    @staticmethod
    def _stem(in_channels: int, width: int, small_input: bool) -> nn.Sequential:
        if small_input:  # 28×28 stays 28×28: a stride-4 stem would leave too little resolution
            return nn.Sequential(
                nn.Conv2d(in_channels, width, 3, 1, 1, bias=False),
                nn.BatchNorm2d(width),
                nn.ReLU(inplace=True),
            )
        # 224 → conv7/2 → 112 → max pool 3/2 → 56
        return nn.Sequential(
            nn.Conv2d(in_channels, width, 7, 2, 3, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(3, 2, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x: (N, C, 224, 224) → stem (N, w, 56, 56) → stages (N, 8w·expansion, 7, 7) → (N, classes)
        blocks = (block for stage in self.stages for block in stage)
        return self.head(run_blocks(blocks, self.stem(x), self.grad_checkpointing))

    def example_input(self, batch: int = 2) -> tuple[torch.Tensor, ...]:
        return image_batch(batch, self.in_channels, self.image_size)


# key: (block, layers, groups, width_per_group) — torchvision's named configurations.
RESNET_CFGS: dict[str, tuple[BlockKind, list[int], int, int]] = {
    "resnet18": ("basic", [2, 2, 2, 2], 1, 64),
    "resnet34": ("basic", [3, 4, 6, 3], 1, 64),
    "resnet50": ("bottleneck", [3, 4, 6, 3], 1, 64),
    "resnet101": ("bottleneck", [3, 4, 23, 3], 1, 64),
    "resnet152": ("bottleneck", [3, 8, 36, 3], 1, 64),
    "resnext50_32x4d": ("bottleneck", [3, 4, 6, 3], 32, 4),
    "resnext101_32x8d": ("bottleneck", [3, 4, 23, 3], 32, 8),
    "resnext101_64x4d": ("bottleneck", [3, 4, 23, 3], 64, 4),
    "wide_resnet50_2": ("bottleneck", [3, 4, 6, 3], 1, 128),
    "wide_resnet101_2": ("bottleneck", [3, 4, 23, 3], 1, 128),
}


def _named(key: str, cfg: tuple[BlockKind, list[int], int, int], preact: bool) -> None:
    block, layers, groups, wpg = cfg

    def build(
        *,
        num_classes: int = 1000,
        in_channels: int = 3,
        width: int = 64,
        preact: bool = preact,
        stochastic_depth: float = 0.0,
        small_input: bool = False,
        image_size: int = 224,
    ) -> nn.Module:
        return ResNet(
            block,
            layers,
            num_classes,
            in_channels,
            groups,
            wpg,
            width,
            preact,
            stochastic_depth,
            small_input,
            image_size,
        )

    name = ("preact_" if preact else "") + key
    build.__name__ = name
    build.__doc__ = (
        f"{key} ({block} blocks {layers}, groups {groups}, width/group {wpg})"
        f"{', pre-activation' if preact else ''}; input (N, 3, 224, 224) by default, "
        "``small_input=True`` for 28×28/32×32."
    )
    register_model(name)(build)


for _key, _cfg in RESNET_CFGS.items():
    _named(_key, _cfg, preact=False)
for _key in ("resnet18", "resnet34", "resnet50"):
    _named(_key, RESNET_CFGS[_key], preact=True)


@register_model("resnet")
def resnet(
    *,
    block: BlockKind = "basic",
    layers: list[int] = [2, 2, 2, 2],  # noqa: B006 - never mutated
    groups: int = 1,
    width_per_group: int = 64,
    width: int = 32,
    preact: bool = False,
    stochastic_depth: float = 0.0,
    small_input: bool = True,
    num_classes: int = 10,
    in_channels: int = 1,
    image_size: int = 28,
) -> nn.Module:
    """Any ResNet/ResNeXt: block kind, blocks per stage, groups; defaults suit 28×28 images."""
    return ResNet(
        block,
        list(layers),
        num_classes,
        in_channels,
        groups,
        width_per_group,
        width,
        preact,
        stochastic_depth,
        small_input,
        image_size,
    )
