"""LeNet-5 (LeCun et al., 1998): classic sigmoid/avg-pool form and a modern ReLU/max-pool form."""

from __future__ import annotations

import torch
from torch import nn

from trainlab.models.layers import make_act
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
    ) -> None:
        super().__init__()
        act = "sigmoid" if classic else "relu"
        pool = nn.AvgPool2d if classic else nn.MaxPool2d
        pad = 2 if image_size == 28 else 0
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 6, 5, padding=pad),
            nn.BatchNorm2d(6) if conv_bn else nn.Identity(),
            make_act(act),
            pool(2),
            nn.Conv2d(6, 16, 5),
            nn.BatchNorm2d(16) if conv_bn else nn.Identity(),
            make_act(act),
            pool(2),
        )
        side = (image_size + 2 * pad - 4) // 2
        side = (side - 4) // 2
        fc: list[nn.Module] = [nn.Flatten()]
        for i, o in ((16 * side * side, 120), (120, 84)):
            fc += [nn.Linear(i, o), nn.BatchNorm1d(o) if fc_bn else nn.Identity(), make_act(act)]
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
) -> nn.Module:
    """LeNet-5; ``classic=True`` for sigmoid + average pooling, batch norm optional per part."""
    return LeNet5(num_classes, in_channels, image_size, classic, conv_bn, fc_bn, dropout)
