"""AnyNet design space and RegNet points (Radosavovic et al., 2020, "Designing network design
spaces").

AnyNet: stem → stages of residual bottleneck blocks → GAP → FC, each stage i described by depth
dᵢ, width wᵢ, group width gᵢ and bottleneck ratio b (block inner width wᵢ·b, in wᵢ·b / gᵢ groups);
the first block of each stage has stride 2. RegNetY adds squeeze-and-excitation to each block.

RegNet restricts AnyNet to widths on a quantised line: block j has width
``w_0 · w_m ^ round(log(u_j / w_0) / log w_m)`` with ``u_j = w_0 + w_a · j``, rounded to a
multiple of 8; consecutive blocks of equal width form a stage (so the stage count follows from
the parameters; ``anynet`` takes it explicitly: one list entry per stage).

``block="resnet"`` swaps the ResNeXt (X) block for ResNet's basic block (two 3×3 convolutions,
ungrouped: group width and bottleneck ratio do not apply), the textbook's "de-ResNeXt-ified"
RegNet. ``trainlab.models.anynet_space.sample_anynet`` draws seeded AnyNet design-space
samples (``anynet_sample``).
"""

from __future__ import annotations

import itertools
import math

import torch
from torch import nn

from trainlab.errors import ConfigError
from trainlab.models.examples import image_batch
from trainlab.models.registry import register_model

__all__ = ["AnyNet", "BLOCKS", "anynet", "regnet", "regnet_stages", "stages_w_m"]

BLOCKS = ("resnext", "resnet")


def _conv_bn(c_in: int, c_out: int, k: int, stride: int = 1, groups: int = 1, act: bool = True):
    layers: list[nn.Module] = [
        nn.Conv2d(c_in, c_out, k, stride, k // 2, groups=groups, bias=False),
        nn.BatchNorm2d(c_out),
    ]
    return nn.Sequential(*layers, nn.ReLU(inplace=True)) if act else nn.Sequential(*layers)


class SqueezeExcite(nn.Module):
    """Channel gating: (N, C, H, W) scaled by sigmoid(MLP(GAP(x))) of shape (N, C, 1, 1)."""

    def __init__(self, channels: int, squeeze: int) -> None:
        super().__init__()
        self.gate = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),
            nn.Conv2d(channels, squeeze, 1),
            nn.ReLU(inplace=True),
            nn.Conv2d(squeeze, channels, 1),
            nn.Sigmoid(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gate(x)


class BottleneckBlock(nn.Module):
    """X block: 1×1 → 3×3 grouped (stride) → [SE] → 1×1, plus projection shortcut if needed."""

    def __init__(self, w_in: int, w_out: int, stride: int, group_width: int, b: float, se: float):
        super().__init__()
        w_b = int(round(w_out * b))
        layers: list[nn.Module] = [
            _conv_bn(w_in, w_b, 1),
            _conv_bn(w_b, w_b, 3, stride, w_b // group_width),
        ]
        if se > 0:  # the SE width is relative to the block's *input* width (paper, torchvision)
            layers.append(SqueezeExcite(w_b, int(round(se * w_in))))
        layers.append(_conv_bn(w_b, w_out, 1, act=False))
        self.f = nn.Sequential(*layers)
        self.proj = (
            _conv_bn(w_in, w_out, 1, stride, act=False) if stride != 1 or w_in != w_out else None
        )
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skip = x if self.proj is None else self.proj(x)
        return self.act(skip + self.f(x))


class BasicBlock(nn.Module):
    """ResNet block: 3×3 (stride) → BN → ReLU → 3×3 → BN, plus projection shortcut if needed."""

    def __init__(self, w_in: int, w_out: int, stride: int) -> None:
        super().__init__()
        self.f = nn.Sequential(
            _conv_bn(w_in, w_out, 3, stride), _conv_bn(w_out, w_out, 3, act=False)
        )
        self.proj = (
            _conv_bn(w_in, w_out, 1, stride, act=False) if stride != 1 or w_in != w_out else None
        )
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skip = x if self.proj is None else self.proj(x)
        return self.act(skip + self.f(x))


def _stage(c_in: int, w: int, depth: int, g: int, b: float, se: float, block: str) -> nn.Sequential:
    # The first block of a stage halves H and W: 224 → 112 (stem) → 56 → 28 → 14 → 7.
    if block == "resnet":
        return nn.Sequential(*(BasicBlock(c_in if i == 0 else w, w, 2 - min(i, 1))
                               for i in range(depth)))  # fmt: skip
    w_b = int(round(w * b))
    if w_b % g:
        raise ConfigError(
            f"model: a stage of width {w} with bottleneck {b} has inner width {w_b}, not a "
            f"multiple of its group width {g}"
        )
    return nn.Sequential(
        *(BottleneckBlock(c_in if i == 0 else w, w, 2 - min(i, 1), g, b, se) for i in range(depth))
    )


class AnyNet(nn.Module):
    """Stem (3×3, stride 2; stride 1 with ``small_input``) → stages → GAP → FC.

    ``bottleneck`` is one ratio for every stage or a list with one per stage; ``block`` is
    ``resnext`` (the X block) or ``resnet`` (basic block; group widths and ratios unused).
    """

    def __init__(
        self,
        depths: list[int],
        widths: list[int],
        group_widths: list[int],
        bottleneck: float | list[float],
        se_ratio: float,
        stem_width: int,
        num_classes: int,
        in_channels: int,
        small_input: bool,
        image_size: int,
        block: str = "resnext",
    ) -> None:
        super().__init__()
        ratios = list(bottleneck) if isinstance(bottleneck, list) else [bottleneck] * len(depths)
        if not len(depths) == len(widths) == len(group_widths) == len(ratios):
            raise ConfigError(
                "model: depths, widths, group_widths (and a bottleneck list) need one entry per "
                f"stage; got {len(depths)}, {len(widths)}, {len(group_widths)}, {len(ratios)}"
            )
        if block not in BLOCKS:
            raise ConfigError(f"model.block: one of {', '.join(BLOCKS)}, got {block!r}")
        self.in_channels, self.image_size = in_channels, image_size
        self.stem = _conv_bn(in_channels, stem_width, 3, 1 if small_input else 2)
        stages: list[nn.Module] = []
        c = stem_width
        for d, w, g, b in zip(depths, widths, group_widths, ratios, strict=True):
            stages.append(_stage(c, w, d, g, b, se_ratio, block))
            c = w
        self.stages = nn.Sequential(*stages)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x: (N, C, H, W) → (N, widths[-1], H / 32, W / 32) → (N, num_classes)
        return self.head(self.stages(self.stem(x)))

    def example_input(self, batch: int = 2) -> tuple[torch.Tensor, ...]:
        return image_batch(batch, self.in_channels, self.image_size)


def _make_divisible(v: float, divisor: int) -> int:
    # Nearest multiple of `divisor`, never more than 10% below v (the TF/torchvision rule).
    new_v = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return new_v + divisor if new_v < 0.9 * v else new_v


def stages_w_m(depth: int, w_0: int, w_a: float, stages: int) -> float:
    """The ``w_m`` that quantises RegNet's linear widths ``w_0 + w_a·j`` (j < depth) onto
    exactly ``stages`` levels ``w_0·w_m^s``: the last linear width becomes the top level.

    Example: ``stages_w_m(13, 24, 36.44, 4)`` is about 2.68 (the default point's 2.49 also
    gives four stages).
    """
    if not 2 <= stages <= depth:
        raise ConfigError(f"model.stages: {stages} stages need 2 ≤ stages ≤ depth ({depth})")
    if w_a <= 0:
        raise ConfigError("model.stages needs w_a > 0 (with w_a = 0 every block has width w_0)")
    w_m = ((w_0 + w_a * (depth - 1)) / w_0) ** (1.0 / (stages - 1))
    got = len(regnet_stages(depth, w_0, w_a, w_m, 8)[0])
    if got != stages:
        raise ConfigError(
            f"model.stages: depth {depth} with w_0 {w_0}, w_a {w_a} gives {got} stages, not "
            f"{stages} (a level gets no block): raise depth or w_a"
        )
    return w_m


def regnet_stages(
    depth: int, w_0: int, w_a: float, w_m: float, group_width: int, bottleneck: float = 1.0
) -> tuple[list[int], list[int], list[int]]:
    """(depths, widths, group_widths) per stage of a RegNet; float32 as torchvision computes it."""
    if w_a < 0 or w_0 <= 0 or w_m <= 1 or w_0 % 8 != 0:
        raise ValueError("RegNet needs w_a ≥ 0, w_m > 1 and w_0 a positive multiple of 8")
    u = torch.arange(depth, device="cpu") * w_a + w_0  # linear widths u_j (float32, on CPU)
    steps = torch.round(torch.log(u / w_0) / math.log(w_m))  # quantised to powers of w_m
    block_w = (torch.round(w_0 * torch.pow(w_m, steps) / 8) * 8).int().tolist()
    groups = [(w, len(list(blocks))) for w, blocks in itertools.groupby(block_w)]
    widths, depths = [w for w, _ in groups], [d for _, d in groups]
    # Make each inner width a multiple of its group width (shrinking the group if it is wider).
    gws = [min(group_width, int(w * bottleneck)) for w in widths]
    inner = [_make_divisible(int(w * bottleneck), g) for w, g in zip(widths, gws, strict=False)]
    return depths, [int(w / bottleneck) for w in inner], gws


# key: (depth, w_0, w_a, w_m, group_width, se_ratio) — torchvision's RegNetX/Y points.
REGNET_CFGS: dict[str, tuple[int, int, float, float, int, float]] = {
    "regnet_x_400mf": (22, 24, 24.48, 2.54, 16, 0.0),
    "regnet_x_800mf": (16, 56, 35.73, 2.28, 16, 0.0),
    "regnet_x_1_6gf": (18, 80, 34.01, 2.25, 24, 0.0),
    "regnet_x_3_2gf": (25, 88, 26.31, 2.25, 48, 0.0),
    "regnet_x_8gf": (23, 80, 49.56, 2.88, 120, 0.0),
    "regnet_x_16gf": (22, 216, 55.59, 2.1, 128, 0.0),
    "regnet_x_32gf": (23, 320, 69.86, 2.0, 168, 0.0),
    "regnet_y_400mf": (16, 48, 27.89, 2.09, 8, 0.25),
    "regnet_y_800mf": (14, 56, 38.84, 2.4, 16, 0.25),
    "regnet_y_1_6gf": (27, 48, 20.71, 2.65, 24, 0.25),
    "regnet_y_3_2gf": (21, 80, 42.63, 2.66, 24, 0.25),
    "regnet_y_8gf": (17, 192, 76.82, 2.19, 56, 0.25),
    "regnet_y_16gf": (18, 200, 106.23, 2.48, 112, 0.25),
    "regnet_y_32gf": (20, 232, 115.89, 2.53, 232, 0.25),
}


def _build_regnet(
    cfg: tuple[int, int, float, float, int, float],
    num_classes: int,
    in_channels: int,
    small_input: bool,
    image_size: int,
    block: str = "resnext",
) -> AnyNet:
    depth, w_0, w_a, w_m, gw, se = cfg
    depths, widths, gws = regnet_stages(depth, w_0, w_a, w_m, gw)
    return AnyNet(
        depths, widths, gws, 1.0, se, 32, num_classes, in_channels, small_input, image_size, block
    )


def _named(key: str) -> None:
    def build(
        *,
        num_classes: int = 1000,
        in_channels: int = 3,
        small_input: bool = False,
        image_size: int = 224,
    ) -> nn.Module:
        return _build_regnet(REGNET_CFGS[key], num_classes, in_channels, small_input, image_size)

    build.__name__ = key
    build.__doc__ = f"{key} (depth, w_0, w_a, w_m, group width, SE) = {REGNET_CFGS[key]}."
    register_model(key)(build)


for _key in REGNET_CFGS:
    _named(_key)


@register_model("regnet")
def regnet(
    *,
    depth: int = 13,
    w_0: int = 24,
    w_a: float = 36.44,
    w_m: float = 2.49,
    group_width: int = 8,
    se_ratio: float = 0.0,
    num_classes: int = 10,
    in_channels: int = 1,
    small_input: bool = True,
    image_size: int = 28,
    block: str = "resnext",
    stages: int | None = None,
) -> nn.Module:
    """Any RegNet point (w_0, w_a, w_m, depth); defaults are RegNetX-200MF with a 28×28 stem.

    The stages follow from the parameters (``regnet_stages`` lists them; the defaults give
    four). ``stages=N`` asks for N stages instead: ``w_m`` is then set so that the quantised
    widths take exactly N values, from ``w_0`` to the last linear width (``stages_w_m``).
    ``block="resnet"`` uses ResNet's basic block instead of the ResNeXt block.

    Example: ``create_model("regnet", stages=2)`` has two stages of widths 24 and 464.
    """
    if stages is not None:
        w_m = stages_w_m(depth, w_0, w_a, stages)
    cfg = (depth, w_0, w_a, w_m, group_width, se_ratio)
    return _build_regnet(cfg, num_classes, in_channels, small_input, image_size, block)


@register_model("anynet")
def anynet(
    *,
    depths: list[int] = [1, 2, 2],  # noqa: B006 - never mutated
    widths: list[int] = [32, 64, 128],  # noqa: B006 - never mutated
    group_widths: list[int] = [8, 8, 8],  # noqa: B006 - never mutated
    bottleneck: float | list[float] = 1.0,
    se_ratio: float = 0.0,
    stem_width: int = 16,
    num_classes: int = 10,
    in_channels: int = 1,
    small_input: bool = True,
    image_size: int = 28,
    block: str = "resnext",
) -> nn.Module:
    """AnyNet with explicit per-stage depths, widths and group widths (default: 28×28 input).

    One list entry per stage (four stages: four entries each); ``bottleneck`` one ratio or one
    per stage; ``block``: ``resnext`` or ``resnet``.
    """
    return AnyNet(
        list(depths),
        list(widths),
        list(group_widths),
        list(bottleneck) if isinstance(bottleneck, list) else bottleneck,
        se_ratio,
        stem_width,
        num_classes,
        in_channels,
        small_input,
        image_size,
        block,
    )
