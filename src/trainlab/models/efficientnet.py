"""EfficientNet B0-B3 (Tan & Le, 2019): MBConv blocks (inverted residuals with squeeze-excitation
and SiLU) scaled together in width, depth and input resolution.

B0 is the searched base network; B1-B3 multiply its widths by ``w`` (rounded to multiples of 8)
and its stage depths by ``d`` (rounded up), and were trained at larger images:

======  =====  =====  ==========  =======
model    w      d     image side  dropout
======  =====  =====  ==========  =======
b0      1.0    1.0    224         0.2
b1      1.0    1.1    240         0.2
b2      1.1    1.2    288         0.3
b3      1.2    1.4    300         0.3
======  =====  =====  ==========  =======

Block ``j`` of ``J`` drops its residual branch with probability ``stochastic_depth · j / J`` in
training. ``small_input``: stride-1 stem for 28×28 / 32×32 images (16× downsampling, not 32×).
With the defaults each named builder has exactly torchvision's parameter count.
"""

from __future__ import annotations

import math

from torch import nn

from trainlab.errors import ConfigError
from trainlab.models.layers.mobile_blocks import make_divisible
from trainlab.models.mobilenet import BlockSpec, MobileNet, MobileNetSpec
from trainlab.models.registry import register_model

__all__ = ["EFFICIENTNET_CFGS", "efficientnet_spec"]

# B0's stages: (expansion, kernel, first stride, c_in, c_out, repeats).
B0_STAGES = [(1, 3, 1, 32, 16, 1), (6, 3, 2, 16, 24, 2), (6, 5, 2, 24, 40, 2), (6, 3, 2, 40, 80, 3),
             (6, 5, 1, 80, 112, 3), (6, 5, 2, 112, 192, 4), (6, 3, 1, 192, 320, 1)]  # fmt: skip

# name: (width multiplier, depth multiplier, image side, dropout) — torchvision's values.
EFFICIENTNET_CFGS: dict[str, tuple[float, float, int, float]] = {
    "efficientnet_b0": (1.0, 1.0, 224, 0.2),
    "efficientnet_b1": (1.0, 1.1, 240, 0.2),
    "efficientnet_b2": (1.1, 1.2, 288, 0.3),
    "efficientnet_b3": (1.2, 1.4, 300, 0.3),
}


def efficientnet_spec(
    width_mult: float, depth_mult: float, stochastic_depth: float = 0.2
) -> MobileNetSpec:
    """The layers of B0 scaled by ``width_mult`` and ``depth_mult``.

    >>> spec = efficientnet_spec(1.0, 1.0)
    >>> len(spec.blocks), spec.last
    (16, 1280)
    """
    stages = [
        (t, k, s, make_divisible(ci * width_mult), make_divisible(co * width_mult),
         math.ceil(n * depth_mult))
        for t, k, s, ci, co, n in B0_STAGES
    ]  # fmt: skip
    total = sum(stage[-1] for stage in stages)
    blocks: list[BlockSpec] = []
    for t, k, s, c_in, c_out, n in stages:
        for i in range(n):
            w_in = c_in if i == 0 else c_out
            squeeze = max(1, w_in // 4)  # SE width: a quarter of the block's *input* width
            drop = stochastic_depth * len(blocks) / total  # linear in the block index
            hidden, stride = make_divisible(w_in * t), s if i == 0 else 1
            blocks.append(BlockSpec(w_in, c_out, hidden, k, stride, "silu", squeeze, drop))
    return MobileNetSpec(
        stages[0][3], "silu", blocks, 4 * stages[-1][4], "silu",
        se_act="silu", se_gate="sigmoid", linear_init="uniform",
    )  # fmt: skip


def _named(key: str) -> None:
    width_mult, depth_mult, side, drop = EFFICIENTNET_CFGS[key]

    def build(
        *,
        num_classes: int = 1000,
        in_channels: int = 3,
        dropout: float = drop,  # before the classifier
        stochastic_depth: float = 0.2,  # the last block's drop-path rate (linear in depth)
        small_input: bool = False,  # stride-1 stem for 28×28 / 32×32 images (16× downsampling)
        image_size: int = side,  # the side of example inputs (analyze, tests)
    ) -> nn.Module:
        if not 0.0 <= stochastic_depth < 1.0:
            raise ConfigError(f"model.stochastic_depth must be in [0, 1), got {stochastic_depth}")
        return MobileNet(
            efficientnet_spec(width_mult, depth_mult, stochastic_depth),
            num_classes=num_classes, in_channels=in_channels, dropout=dropout,
            small_input=small_input, image_size=image_size,
        )  # fmt: skip

    build.__name__ = key
    build.__doc__ = (
        f"EfficientNet-{key[-2:].upper()} (width ×{width_mult}, depth ×{depth_mult}, "
        f"{side} px); ``small_input=True`` for 28/32 px."
    )
    register_model(key)(build)


for _key in EFFICIENTNET_CFGS:
    _named(_key)
