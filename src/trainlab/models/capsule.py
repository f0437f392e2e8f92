"""Capsule network with dynamic routing (Sabour, Frosst & Hinton, 2017), for 28×28 images.

    conv 9×9 (256) → ReLU                               (N, 256, 20, 20)
    primary capsules: conv 9×9 stride 2 → 32 maps × 8D  (N, 1152, 8) after squashing
    class capsules: each primary capsule predicts each class capsule through its own 16×8
    matrix; routing-by-agreement (3 iterations) combines the predictions   (N, classes, 16)

Forward contract: ``model(x (N, C, 28, 28)) -> capsule lengths (N, num_classes)`` in [0, 1)
(class probabilities, trained with :func:`margin_loss`, not cross-entropy).
``model.capsules(x)`` returns the class capsules (N, num_classes, 16) and
``model.reconstruct(capsules, labels=None)`` the decoder's (N, C, 28, 28) reconstruction from the
true (or, without labels, the longest) capsule — the paper's regulariser.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from trainlab.models.examples import image_batch
from trainlab.models.registry import register_model

__all__ = ["CapsuleNet", "margin_loss", "squash"]


def squash(s: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """Shrink vector length into [0, 1), keep direction: v = ‖s‖² / (1 + ‖s‖²) · s / ‖s‖."""
    sq = s.pow(2).sum(dim, keepdim=True)
    return sq / (1 + sq) * s / torch.sqrt(sq + 1e-8)


def margin_loss(
    lengths: torch.Tensor,
    targets: torch.Tensor,
    m_pos: float = 0.9,
    m_neg: float = 0.1,
    lam: float = 0.5,
) -> torch.Tensor:
    """The paper's margin loss over capsule lengths (N, K) and int targets (N,); a scalar."""
    t = F.one_hot(targets, lengths.shape[-1]).to(lengths.dtype)
    loss = t * F.relu(m_pos - lengths).pow(2) + lam * (1 - t) * F.relu(lengths - m_neg).pow(2)
    return loss.sum(-1).mean()


class CapsuleNet(nn.Module):
    def __init__(
        self,
        num_classes: int,
        in_channels: int,
        image_size: int,
        conv_channels: int,
        primary_maps: int,
        routing_iters: int,
    ) -> None:
        super().__init__()
        self.in_channels, self.image_size, self.routing_iters = (
            in_channels,
            image_size,
            routing_iters,
        )
        self.conv = nn.Sequential(nn.Conv2d(in_channels, conv_channels, 9), nn.ReLU(inplace=True))
        self.primary = nn.Conv2d(conv_channels, primary_maps * 8, 9, stride=2)
        side = ((image_size - 8) - 9) // 2 + 1  # 28 → 20 → 6
        n_primary = primary_maps * side * side  # 1152 for the paper's sizes
        # One 16×8 transformation per (primary capsule, class capsule) pair.
        self.W = nn.Parameter(0.01 * torch.randn(1, n_primary, num_classes, 16, 8))
        self.decoder = nn.Sequential(
            nn.Linear(16 * num_classes, 512),
            nn.ReLU(inplace=True),
            nn.Linear(512, 1024),
            nn.ReLU(inplace=True),
            nn.Linear(1024, in_channels * image_size * image_size),
            nn.Sigmoid(),
        )

    def capsules(self, x: torch.Tensor) -> torch.Tensor:
        """Class capsules (N, K, 16) by routing-by-agreement."""
        u = self.primary(self.conv(x))  # (N, maps · 8, 6, 6)
        n = u.shape[0]
        u = squash(u.view(n, -1, 8, u.shape[-2] * u.shape[-1]).transpose(2, 3).reshape(n, -1, 8))
        u_hat = (self.W @ u[:, :, None, :, None]).squeeze(-1)  # predictions (N, P, K, 16)
        b = torch.zeros(u_hat.shape[:3], device=x.device, dtype=u_hat.dtype)  # logits (N, P, K)
        for i in range(self.routing_iters):
            c = b.softmax(dim=2)  # each primary capsule splits its vote over the K classes
            last = i == self.routing_iters - 1
            # Gradients flow through the final iteration only (as the reference implementation).
            pred = u_hat if last else u_hat.detach()
            v = squash((c.unsqueeze(-1) * pred).sum(1))  # (N, K, 16)
            if not last:
                b = b + (pred * v.unsqueeze(1)).sum(-1)  # agreement raises the coupling
        return v

    def reconstruct(self, caps: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Decode the capsule of ``labels`` (default: the longest) into (N, C, S, S)."""
        if labels is None:
            labels = caps.norm(dim=-1).argmax(-1)
        mask = F.one_hot(labels, caps.shape[1]).to(caps.dtype).unsqueeze(-1)  # (N, K, 1)
        out = self.decoder((caps * mask).flatten(1))
        return out.view(-1, self.in_channels, self.image_size, self.image_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.capsules(x).norm(dim=-1)  # (N, K): length = probability the class is present

    def example_input(self, batch: int = 2) -> tuple[torch.Tensor, ...]:
        return image_batch(batch, self.in_channels, self.image_size)


@register_model("capsnet")
def capsnet(
    *,
    num_classes: int = 10,
    in_channels: int = 1,
    image_size: int = 28,
    conv_channels: int = 256,
    primary_maps: int = 32,
    routing_iters: int = 3,
) -> nn.Module:
    """CapsNet (8.2M parameters at the paper's sizes); forward gives capsule lengths (N, K)."""
    if image_size < 25:
        raise ValueError(f"capsnet needs image_size ≥ 25 (two 9×9 convs), got {image_size}")
    return CapsuleNet(
        num_classes, in_channels, image_size, conv_channels, primary_maps, routing_iters
    )
