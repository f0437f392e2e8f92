"""LeNet-5 (LeCun et al., 1998): classic sigmoid/avg-pool form and a modern ReLU/max-pool form.

The textbook's batch-norm exercises are options: ``conv_bn`` / ``fc_bn`` switch normalisation on
per part, ``norm`` picks the variant (``batch``, ``mean_only``, ``var_only``, ``frozen_affine``,
or any other name of :mod:`trainlab.models.layers.norm`), ``norm_position`` puts it before the
activation (as the paper, Ioffe & Szegedy 2015) or after it.
"""

from __future__ import annotations

import torch
from torch import nn

from trainlab.models.layers.norm import check_position, norm_act
from trainlab.models.registry import register_model

__all__ = ["LeNet5", "lenet5"]


class LeNet5(nn.Module):
    """conv5(6) → pool → conv5(16) → pool → FC120 → FC84 → FC(num_classes).

    For 28×28 input the first convolution pads by 2, as in the textbook, so the feature map
    before the classifier is 16×5×5.
    """

    def __init__(
        self,
        num_classes: int = 10,
        in_channels: int = 1,
        image_size: int = 28,
        classic: bool = False,
        conv_bn: bool = False,
        fc_bn: bool = False,
        dropout: float = 0.0,
        norm: str = "batch",
        norm_position: str = "before_act",
    ) -> None:
        super().__init__()
        check_position(norm_position)
        act = "sigmoid" if classic else "relu"
        pool = nn.AvgPool2d if classic else nn.MaxPool2d
        pad = 2 if image_size == 28 else 0
        conv_norm, fc_norm = (norm if conv_bn else "none"), (norm if fc_bn else "none")
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 6, 5, padding=pad),
            *norm_act(conv_norm, 6, act, norm_position, placeholder=True),
            pool(2),
            nn.Conv2d(6, 16, 5),
            *norm_act(conv_norm, 16, act, norm_position, placeholder=True),
            pool(2),
        )
        side = (image_size + 2 * pad - 4) // 2
        side = (side - 4) // 2
        fc: list[nn.Module] = [nn.Flatten()]
        for i, o in ((16 * side * side, 120), (120, 84)):
            fc += [nn.Linear(i, o), *norm_act(fc_norm, o, act, norm_position, 1, placeholder=True)]
            if dropout > 0:
                fc.append(nn.Dropout(dropout))
        fc.append(nn.Linear(84, num_classes))
        self.classifier = nn.Sequential(*fc)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x: (N, C, 28, 28) → (N, 16, 5, 5) → logits (N, num_classes)
        return self.classifier(self.features(x))


@register_model("lenet5")
def lenet5(
    *,
    num_classes: int = 10,
    in_channels: int = 1,
    image_size: int = 28,
    classic: bool = False,
    conv_bn: bool = False,
    fc_bn: bool = False,
    dropout: float = 0.0,
    norm: str = "batch",
    norm_position: str = "before_act",
) -> nn.Module:
    """LeNet-5; ``classic=True`` for sigmoid + average pooling, batch norm optional per part.

    ``norm`` is the normalisation ``conv_bn``/``fc_bn`` switch on (``batch``, ``mean_only``,
    ``var_only``, ``frozen_affine``, …); ``norm_position`` is ``before_act`` or ``after_act``.
    The textbook's classic setting: ``recipes/lenet5_classic_fashion_mnist.yaml``.
    """
    return LeNet5(
        num_classes, in_channels, image_size, classic, conv_bn, fc_bn, dropout, norm, norm_position
    )
