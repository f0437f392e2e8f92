"""A small residual CNN for 28×28 images: trainlab's default Fashion-MNIST model.

Layout (default widths 16, 48, 96)::

    stem   conv3×3 → BN → act                      (N, 16, 28, 28)
    stage  maxpool2 → conv3×3 → BN → act → res×k   (N, 48, 14, 14)
    stage  maxpool2 → conv3×3 → BN → act → res×k   (N, 96, 7, 7)
    head   global max pool → dropout → linear      (N, num_classes)

It pools before widening, so the costly full-resolution layer stays narrow: a 16-channel stem
trains ~16 % faster per step than a 24-channel one on a 2-core CPU in bf16, which buys the
default recipe its tenth epoch within three minutes.
"""

from __future__ import annotations

import torch
from torch import nn

from trainlab.models.layers import make_act, make_norm2d
from trainlab.models.layers.checkpointing import checkpointable, run_blocks
from trainlab.models.layers.norm import check_position
from trainlab.models.registry import register_model

__all__ = ["ResNetSmall", "resnet_small"]


def conv_bn_act(
    c_in: int, c_out: int, norm: str, act: str, position: str = "before_act"
) -> nn.Sequential:
    """conv3×3 → norm → act (``position="after_act"``: conv → act → norm)."""
    # Bias dropped when a normalisation follows directly: it has its own shift.
    after = position == "after_act"
    layers = [make_norm2d(norm, c_out), make_act(act)]
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, padding=1, bias=norm == "none" or after),
        *(reversed(layers) if after else layers),
    )


class ResidualBlock(nn.Module):
    """x + f(x) with f = two conv-BN-act layers at constant width."""

    def __init__(self, channels: int, norm: str, act: str, position: str = "before_act") -> None:
        super().__init__()
        self.body = nn.Sequential(
            conv_bn_act(channels, channels, norm, act, position),
            conv_bn_act(channels, channels, norm, act, position),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


@checkpointable
class ResNetSmall(nn.Module):
    def __init__(
        self,
        num_classes: int,
        in_channels: int,
        widths: list[int],
        blocks: list[int],
        norm: str,
        act: str,
        dropout: float,
        norm_position: str = "before_act",
    ) -> None:
        super().__init__()
        if len(blocks) != len(widths) - 1:
            raise ValueError(
                f"blocks needs {len(widths) - 1} entries (one per stage after the stem)"
            )
        check_position(norm_position)
        pos = norm_position
        layers: list[nn.Module] = [conv_bn_act(in_channels, widths[0], norm, act, pos)]
        for c_in, c_out, k in zip(widths[:-1], widths[1:], blocks):
            layers += [nn.MaxPool2d(2), conv_bn_act(c_in, c_out, norm, act, pos)]
            layers += [ResidualBlock(c_out, norm, act, pos) for _ in range(k)]
        self.features = nn.Sequential(*layers)
        self.grad_checkpointing = False  # recompute residual blocks' activations in backward
        self.head = nn.Sequential(
            nn.AdaptiveMaxPool2d(1),
            nn.Flatten(),
            nn.Dropout(dropout),
            nn.Linear(widths[-1], num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x: (N, C, H, W) → features (N, widths[-1], H/4, W/4) → logits (N, num_classes)
        x = run_blocks(self.features, x, self.grad_checkpointing, only=(ResidualBlock,))
        return self.head(x)


@register_model("resnet_small")
def resnet_small(
    *,
    num_classes: int = 10,
    in_channels: int = 1,
    widths: list[int] = [16, 48, 96],  # noqa: B006 - never mutated
    blocks: list[int] = [1, 1],  # noqa: B006 - never mutated
    norm: str = "batch",
    act: str = "relu",
    dropout: float = 0.0,
    norm_position: str = "before_act",
) -> nn.Module:
    """Small residual CNN for 28×28 images (default model of ``recipes/fashion_mnist.yaml``).

    ``norm``: any of ``trainlab.models.layers.NORMS`` (``batch``, ``mean_only``, ``var_only``,
    ``frozen_affine``, ``group``, …); ``norm_position``: ``before_act`` or ``after_act``.
    """
    return ResNetSmall(
        num_classes, in_channels, list(widths), list(blocks), norm, act, dropout, norm_position
    )
