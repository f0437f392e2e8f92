"""Multi-layer perceptron for images (flattened) or tabular features."""

from __future__ import annotations

import torch
from torch import nn

from trainlab.models.layers import make_act, make_norm1d
from trainlab.models.registry import register_model

__all__ = ["MLP", "mlp"]


class MLP(nn.Module):
    """Flatten → [Linear → norm → act → dropout] × len(hidden) → Linear."""

    def __init__(
        self,
        in_features: int,
        hidden: list[int],
        num_classes: int,
        act: str = "relu",
        norm: str = "none",
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Flatten()]
        width = in_features
        for h in hidden:
            # Bias is redundant right before batch norm (its shift absorbs it).
            layers += [
                nn.Linear(width, h, bias=norm != "batch"),
                make_norm1d(norm, h),
                make_act(act),
            ]
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            width = h
        layers.append(nn.Linear(width, num_classes))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x: (N, *in_shape) → logits (N, num_classes)
        return self.net(x)


@register_model("mlp")
def mlp(
    *,
    in_features: int = 784,
    hidden: list[int] = [256, 128],  # noqa: B006 - never mutated; shown as the default in docs
    num_classes: int = 10,
    act: str = "relu",
    norm: str = "none",
    dropout: float = 0.0,
) -> nn.Module:
    """MLP with widths ``hidden`` (one entry per hidden layer)."""
    return MLP(in_features, list(hidden), num_classes, act, norm, dropout)
