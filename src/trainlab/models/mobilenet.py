"""MobileNetV2 (Sandler et al., 2018) and MobileNetV3 (Howard et al., 2019): stacks of inverted
residual blocks built from depthwise-separable convolutions (see
:mod:`trainlab.models.layers.mobile_blocks`).

- ``mobilenet_v2``: ReLU6 everywhere, no squeeze-excitation, 17 blocks, 1280-channel last conv.
- ``mobilenet_v3_large`` / ``mobilenet_v3_small``: blocks found by architecture search, 3×3 and
  5×5 depthwise kernels, squeeze-excitation with a hard-sigmoid gate in some blocks, hard-swish
  in the deeper half, and a two-layer head.
- ``width_mult`` scales every width (rounded to multiples of 8), as in the papers.
- ``small_input``: the stem conv has stride 1 instead of 2, so the network downsamples 16× instead
  of 32×: a 28×28 image leaves the last block at 2×2 instead of 1×1 and costs what a 56×56 image
  costs the ImageNet network.

With the defaults each named builder has exactly torchvision's parameter count. The network class
:class:`MobileNet` is shared with EfficientNet (:mod:`trainlab.models.efficientnet`).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Literal

import torch
from torch import nn

from trainlab.errors import ConfigError
from trainlab.models.examples import image_batch
from trainlab.models.layers.act import make_act
from trainlab.models.layers.checkpointing import checkpointable, run_blocks
from trainlab.models.layers.mobile_blocks import (
    InvertedResidual,
    Norm,
    conv_norm_act,
    make_divisible,
)
from trainlab.models.registry import register_model

__all__ = ["BlockSpec", "MobileNet", "MobileNetSpec", "mobilenet_v2_spec", "mobilenet_v3_spec"]


@dataclass(frozen=True)
class BlockSpec:
    """One inverted residual: widths, depthwise kernel, stride, activation, SE width, drop rate."""

    c_in: int
    c_out: int
    hidden: int
    kernel: int
    stride: int
    act: str
    se_squeeze: int = 0  # 0: no squeeze-excitation
    drop_path: float = 0.0


@dataclass(frozen=True)
class MobileNetSpec:
    """The whole architecture: stem width, blocks, last conv, head and the layer choices."""

    stem: int
    stem_act: str
    blocks: list[BlockSpec]
    last: int
    last_act: str
    head_hidden: int = 0  # > 0: Linear → act → dropout → Linear head (MobileNetV3)
    head_act: str = "hardswish"
    se_act: str = "relu"
    se_gate: str = "sigmoid"
    norm: Norm = nn.BatchNorm2d
    linear_init: Literal["normal", "uniform"] = "normal"


def _head(spec: MobileNetSpec, dropout: float, num_classes: int) -> nn.Sequential:
    layers: list[nn.Module] = [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
    c = spec.last
    if spec.head_hidden > 0:
        layers += [nn.Linear(c, spec.head_hidden), make_act(spec.head_act)]
        c = spec.head_hidden
    return nn.Sequential(*layers, nn.Dropout(dropout), nn.Linear(c, num_classes))


def _block(b: BlockSpec, spec: MobileNetSpec) -> InvertedResidual:
    return InvertedResidual(
        b.c_in, b.c_out, b.hidden, b.kernel, b.stride, b.act,
        b.se_squeeze, spec.se_act, spec.se_gate, b.drop_path, spec.norm,
    )  # fmt: skip


@checkpointable
class MobileNet(nn.Module):
    """Stem 3×3 conv (stride 2; 1 with ``small_input``) → inverted residuals → 1×1 conv → head.

    >>> m = MobileNet(mobilenet_v2_spec(0.5), num_classes=10, in_channels=1, small_input=True)
    >>> m(torch.randn(2, 1, 28, 28)).shape
    torch.Size([2, 10])
    """

    def __init__(
        self,
        spec: MobileNetSpec,
        *,
        num_classes: int = 1000,
        in_channels: int = 3,
        dropout: float = 0.2,
        small_input: bool = False,
        image_size: int = 224,
    ) -> None:
        super().__init__()
        self.in_channels, self.image_size = in_channels, image_size
        norm = spec.norm
        stride = 1 if small_input else 2
        self.stem = conv_norm_act(in_channels, spec.stem, 3, stride, act=spec.stem_act, norm=norm)
        self.blocks = nn.Sequential(*(_block(b, spec) for b in spec.blocks))
        self.last = conv_norm_act(spec.blocks[-1].c_out, spec.last, 1, act=spec.last_act, norm=norm)
        self.head = _head(spec, dropout, num_classes)
        self.grad_checkpointing = False  # recompute each block's activations in backward
        self._init(spec.linear_init)

    def _init(self, linear_init: str) -> None:
        # torchvision's scheme: He (fan-out) convs, unit norms, small classifier weights
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                if linear_init == "normal":
                    nn.init.normal_(m.weight, 0.0, 0.01)
                else:  # EfficientNet: uniform in ±1/√fan_out
                    bound = m.out_features**-0.5
                    nn.init.uniform_(m.weight, -bound, bound)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x: (N, C, 224, 224) → stem (N, stem, 112, 112) → blocks (N, c, 7, 7) → (N, classes)
        y = run_blocks(self.blocks, self.stem(x), self.grad_checkpointing)
        return self.head(self.last(y))

    def example_input(self, batch: int = 2) -> tuple[torch.Tensor, ...]:
        return image_batch(batch, self.in_channels, self.image_size)


# MobileNetV2: (expansion t, channels c, repeats n, first stride s) per stage.
V2_STAGES = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
             (6, 160, 3, 2), (6, 320, 1, 1)]  # fmt: skip


def _check_width(width_mult: float) -> None:
    if not width_mult > 0:
        raise ConfigError(f"model.width_mult must be > 0, got {width_mult}")


def mobilenet_v2_spec(width_mult: float = 1.0) -> MobileNetSpec:
    """MobileNetV2's layers at width multiplier ``width_mult`` (torchvision's rounding)."""
    _check_width(width_mult)
    c = make_divisible(32 * width_mult)
    blocks: list[BlockSpec] = []
    for t, ch, n, s in V2_STAGES:
        out = make_divisible(ch * width_mult)
        for i in range(n):
            blocks.append(BlockSpec(c, out, int(round(c * t)), 3, s if i == 0 else 1, "relu6"))
            c = out
    last = make_divisible(1280 * max(1.0, width_mult))  # the last conv never shrinks
    return MobileNetSpec(make_divisible(32 * width_mult), "relu6", blocks, last, "relu6")


# MobileNetV3: (c_in, kernel, hidden, c_out, squeeze-excitation, hard-swish, stride) per block.
V3Row = tuple[int, int, int, int, bool, bool, int]
V3_LARGE: list[V3Row] = [
    (16, 3, 16, 16, False, False, 1), (16, 3, 64, 24, False, False, 2),
    (24, 3, 72, 24, False, False, 1), (24, 5, 72, 40, True, False, 2),
    (40, 5, 120, 40, True, False, 1), (40, 5, 120, 40, True, False, 1),
    (40, 3, 240, 80, False, True, 2), (80, 3, 200, 80, False, True, 1),
    (80, 3, 184, 80, False, True, 1), (80, 3, 184, 80, False, True, 1),
    (80, 3, 480, 112, True, True, 1), (112, 3, 672, 112, True, True, 1),
    (112, 5, 672, 160, True, True, 2), (160, 5, 960, 160, True, True, 1),
    (160, 5, 960, 160, True, True, 1),
]  # fmt: skip
V3_SMALL: list[V3Row] = [
    (16, 3, 16, 16, True, False, 2), (16, 3, 72, 24, False, False, 2),
    (24, 3, 88, 24, False, False, 1), (24, 5, 96, 40, True, True, 2),
    (40, 5, 240, 40, True, True, 1), (40, 5, 240, 40, True, True, 1),
    (40, 5, 120, 48, True, True, 1), (48, 5, 144, 48, True, True, 1),
    (48, 5, 288, 96, True, True, 2), (96, 5, 576, 96, True, True, 1),
    (96, 5, 576, 96, True, True, 1),
]  # fmt: skip


def mobilenet_v3_spec(
    size: Literal["large", "small"], width_mult: float = 1.0, bn_momentum: float = 0.01
) -> MobileNetSpec:
    """MobileNetV3-Large or -Small at width multiplier ``width_mult`` (torchvision's rounding).

    Batch norm has TensorFlow's eps 1e-3 and, by default, momentum 0.01 (torchvision's): running
    statistics average over ~100 steps, too slow for runs of a few hundred steps, where 0.1
    (PyTorch's default) gives usable evaluation statistics.
    """
    _check_width(width_mult)
    rows, head = (V3_LARGE, 1280) if size == "large" else (V3_SMALL, 1024)
    blocks = []
    for c_in, k, hidden, c_out, se, hs, stride in rows:
        h = make_divisible(hidden * width_mult)
        squeeze = make_divisible(h // 4) if se else 0  # SE width: a quarter of the expansion
        act = "hardswish" if hs else "relu"
        w_in, w_out = make_divisible(c_in * width_mult), make_divisible(c_out * width_mult)
        blocks.append(BlockSpec(w_in, w_out, h, k, stride, act, squeeze))
    last_in = blocks[-1].c_out
    if not 0.0 < bn_momentum <= 1.0:
        raise ConfigError(f"model.bn_momentum must be in (0, 1], got {bn_momentum}")
    norm = partial(nn.BatchNorm2d, eps=1e-3, momentum=bn_momentum)
    return MobileNetSpec(
        blocks[0].c_in, "hardswish", blocks, 6 * last_in, "hardswish",
        head_hidden=make_divisible(head * width_mult), se_gate="hardsigmoid", norm=norm,
    )  # fmt: skip


@register_model("mobilenet_v2")
def mobilenet_v2(
    *,
    num_classes: int = 1000,
    in_channels: int = 3,
    width_mult: float = 1.0,  # every width × this, rounded to multiples of 8
    dropout: float = 0.2,  # before the classifier
    small_input: bool = False,  # stride-1 stem for 28×28 / 32×32 images (16× downsampling)
    image_size: int = 224,  # the side of example inputs (analyze, tests)
) -> nn.Module:
    """MobileNetV2 (inverted residuals, linear bottlenecks); ``small_input=True`` for 28/32 px."""
    return MobileNet(
        mobilenet_v2_spec(width_mult), num_classes=num_classes, in_channels=in_channels,
        dropout=dropout, small_input=small_input, image_size=image_size,
    )  # fmt: skip


def _v3(size: Literal["large", "small"]) -> None:
    def build(
        *,
        num_classes: int = 1000,
        in_channels: int = 3,
        width_mult: float = 1.0,  # every width × this, rounded to multiples of 8
        dropout: float = 0.2,  # in the head, before the classifier
        bn_momentum: float = 0.01,  # TensorFlow's; 0.1 for runs of a few hundred steps
        small_input: bool = False,  # stride-1 stem for 28×28 / 32×32 images (16× downsampling)
        image_size: int = 224,  # the side of example inputs (analyze, tests)
    ) -> nn.Module:
        return MobileNet(
            mobilenet_v3_spec(size, width_mult, bn_momentum), num_classes=num_classes,
            in_channels=in_channels, dropout=dropout, small_input=small_input,
            image_size=image_size,
        )  # fmt: skip

    name = f"mobilenet_v3_{size}"
    build.__name__ = name
    build.__doc__ = (
        f"MobileNetV3-{size.capitalize()} (SE, hard-swish); ``small_input=True`` for 28/32 px."
    )
    register_model(name)(build)


_v3("large")
_v3("small")
