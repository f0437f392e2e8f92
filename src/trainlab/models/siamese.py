"""Siamese / embedding network (Bromley et al., 1993; FaceNet-style triplet training, 2015).

Forward contract: ``model(x (N, C, S, S)) -> embeddings (N, embedding_dim)``, L2-normalised when
``normalize`` is set. One network embeds anchor, positive and negative alike (the weights are
shared, which is what "siamese" means); the triplet loss
``max(0, ‖a − p‖ − ‖a − n‖ + margin)`` is the task's job (``nn.TripletMarginLoss``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from trainlab.models.examples import image_batch
from trainlab.models.registry import register_model

__all__ = ["EmbeddingNet", "siamese"]


class EmbeddingNet(nn.Module):
    """[conv3×3 → BN → ReLU → max pool] × len(channels) → GAP → FC → (normalise)."""

    def __init__(
        self,
        in_channels: int,
        image_size: int,
        channels: list[int],
        embedding_dim: int,
        normalize: bool,
    ) -> None:
        super().__init__()
        self.in_channels, self.image_size, self.normalize = in_channels, image_size, normalize
        layers: list[nn.Module] = []
        c = in_channels
        for w in channels:
            layers += [
                nn.Conv2d(c, w, 3, padding=1, bias=False),
                nn.BatchNorm2d(w),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(2),
            ]
            c = w
        self.features = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.fc = nn.Linear(c, embedding_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        e = self.fc(self.features(x))  # (N, embedding_dim)
        # On the unit sphere distances are bounded, so one margin suits every batch.
        return F.normalize(e, dim=-1) if self.normalize else e

    def example_input(self, batch: int = 2) -> tuple[torch.Tensor, ...]:
        return image_batch(batch, self.in_channels, self.image_size)


@register_model("siamese")
def siamese(
    *,
    in_channels: int = 1,
    image_size: int = 28,
    embedding_dim: int = 64,
    channels: list[int] = [32, 64, 128],  # noqa: B006 - never mutated
    normalize: bool = True,
) -> nn.Module:
    """Embedding network for contrastive / triplet training: images → (N, embedding_dim)."""
    return EmbeddingNet(in_channels, image_size, list(channels), embedding_dim, normalize)
