"""The blocks of the mobile networks: depthwise-separable convolution and the inverted residual.

- :class:`DepthwiseSeparable` (MobileNet, Howard et al., 2017): a k×k *depthwise* conv (one
  filter per channel, ``groups = channels``) followed by a 1×1 *pointwise* conv that mixes
  channels. For C_in → C_out channels it costs k²·C_in + C_in·C_out multiplies per pixel instead of
  k²·C_in·C_out: 8-9× fewer for 3×3 kernels and wide layers.
- :class:`InvertedResidual` (MobileNetV2, Sandler et al., 2018; MBConv in EfficientNet): a 1×1
  conv *expands* the thin input to ``hidden`` channels, a depthwise-separable conv filters them and
  projects back to a thin output **without** an activation (a "linear bottleneck": ReLU on few
  channels destroys information), and the skip connection joins the thin ends. Optional
  squeeze-excitation after the depthwise conv (MobileNetV3, EfficientNet) and stochastic depth on
  the residual branch (EfficientNet).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from trainlab.models.layers.act import make_act
from trainlab.models.layers.regularize import StochasticDepth
from trainlab.models.layers.squeeze_excite import SqueezeExcite

__all__ = ["DepthwiseSeparable", "InvertedResidual", "Norm", "conv_norm_act", "make_divisible"]

# A normalisation factory: channels → module, e.g. functools.partial(nn.BatchNorm2d, eps=1e-3).
Norm = Callable[[int], nn.Module]


def make_divisible(v: float, divisor: int = 8, min_value: int | None = None) -> int:
    """``v`` rounded to the nearest multiple of ``divisor``, never more than 10 % below ``v``.

    The rule of the TensorFlow MobileNet code (and torchvision), used to scale widths:

    >>> make_divisible(32 * 0.75), make_divisible(1280 * 1.1)
    (24, 1408)
    """
    floor = divisor if min_value is None else min_value
    new_v = max(floor, int(v + divisor / 2) // divisor * divisor)
    return new_v + divisor if new_v < 0.9 * v else new_v


def conv_norm_act(
    c_in: int,
    c_out: int,
    kernel: int,
    stride: int = 1,
    groups: int = 1,
    act: str | None = "relu",
    norm: Norm = nn.BatchNorm2d,
) -> nn.Sequential:
    """Conv (no bias: the norm has one) → norm → activation; ``act=None`` leaves it linear.

    >>> conv_norm_act(3, 16, 3, stride=2, act="hardswish")(torch.randn(1, 3, 32, 32)).shape
    torch.Size([1, 16, 16, 16])
    """
    layers = [nn.Conv2d(c_in, c_out, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False)]
    layers.append(norm(c_out))
    if act is not None:
        layers.append(make_act(act))
    return nn.Sequential(*layers)


class DepthwiseSeparable(nn.Module):
    """Depthwise k×k conv → norm → act → [squeeze-excitation] → pointwise 1×1 → norm → [act].

    ``out_act=None`` gives the linear projection of an inverted residual; MobileNetV1's block
    has ``out_act`` equal to ``act``.

    >>> block = DepthwiseSeparable(32, 64, kernel=3, stride=2)
    >>> block(torch.randn(2, 32, 28, 28)).shape
    torch.Size([2, 64, 14, 14])
    """

    def __init__(
        self,
        c_in: int,
        c_out: int,
        kernel: int = 3,
        stride: int = 1,
        act: str = "relu",
        out_act: str | None = "relu",
        se: SqueezeExcite | None = None,
        norm: Norm = nn.BatchNorm2d,
    ) -> None:
        super().__init__()
        # groups = c_in: each channel gets its own k×k filter (k²·C weights instead of k²·C²)
        self.depthwise = conv_norm_act(c_in, c_in, kernel, stride, c_in, act, norm)
        self.se = se if se is not None else nn.Identity()
        self.pointwise = conv_norm_act(c_in, c_out, 1, act=out_act, norm=norm)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pointwise(self.se(self.depthwise(x)))


class InvertedResidual(nn.Module):
    """``x + drop(project(filter(expand(x))))`` when stride is 1 and C_in = C_out, else no skip.

    ``hidden == c_in`` skips the expansion conv (MobileNetV2's first block, EfficientNet's MBConv1).
    ``se_squeeze > 0`` adds squeeze-excitation on the ``hidden`` channels with ``se_act`` inside
    and ``se_gate`` as the gate.

    >>> block = InvertedResidual(24, 24, hidden=144, kernel=3, stride=1, act="relu6")
    >>> block(torch.randn(2, 24, 14, 14)).shape
    torch.Size([2, 24, 14, 14])
    """

    def __init__(
        self,
        c_in: int,
        c_out: int,
        hidden: int,
        kernel: int = 3,
        stride: int = 1,
        act: str = "relu6",
        se_squeeze: int = 0,
        se_act: str = "relu",
        se_gate: str = "sigmoid",
        drop_path: float = 0.0,
        norm: Norm = nn.BatchNorm2d,
    ) -> None:
        super().__init__()
        if stride not in (1, 2):
            raise ValueError(f"inverted residual stride must be 1 or 2, got {stride}")
        self.expand = (
            conv_norm_act(c_in, hidden, 1, act=act, norm=norm) if hidden != c_in else nn.Identity()
        )
        se = SqueezeExcite(hidden, se_squeeze, se_act, se_gate) if se_squeeze > 0 else None
        self.separable = DepthwiseSeparable(hidden, c_out, kernel, stride, act, None, se, norm)
        self.residual = stride == 1 and c_in == c_out
        self.drop = StochasticDepth(drop_path)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # (N, C_in, H, W) → (N, hidden, H, W) → (N, C_out, H / stride, W / stride)
        y = self.separable(self.expand(x))
        return x + self.drop(y) if self.residual else y
