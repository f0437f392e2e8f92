"""Restricted Boltzmann machine and deep belief network (Hinton, 2002; Hinton et al., 2006).

An RBM is trained by contrastive divergence, not by backpropagating a prediction error:
:meth:`RBM.cd_loss` returns F(v_data) − F(v_model), whose gradient is exactly the CD-k update
(F is the free energy, v_model the end of a k-step Gibbs chain started at the data). Inputs are
Bernoulli visible units: values in [0, 1], e.g. pixel intensities.

Forward contracts
-----------------
- ``rbm``: ``model(v (N, n_visible) or (N, C, S, S)) -> hidden probabilities (N, n_hidden)``.
- ``dbn``: ``model(x) -> logits (N, num_classes)`` (the stack used as a sigmoid MLP for
  fine-tuning); ``model.pretrain_loss(x, layer, k)`` is the CD loss of RBM ``layer`` on the
  features of the layers below — greedy layer-wise pre-training is a loop over ``layer``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from trainlab.models.registry import register_model

__all__ = ["DBN", "RBM"]


class RBM(nn.Module):
    """Energy E(v, h) = −vᵀb_v − hᵀb_h − hᵀWv with binary visible and hidden units."""

    def __init__(self, n_visible: int, n_hidden: int) -> None:
        super().__init__()
        self.W = nn.Parameter(0.01 * torch.randn(n_hidden, n_visible))
        self.b_v = nn.Parameter(torch.zeros(n_visible))
        self.b_h = nn.Parameter(torch.zeros(n_hidden))

    def hidden_prob(self, v: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(F.linear(v, self.W, self.b_h))  # p(h=1 | v): (N, H)

    def visible_prob(self, h: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(F.linear(h, self.W.t(), self.b_v))  # p(v=1 | h): (N, V)

    def free_energy(self, v: torch.Tensor) -> torch.Tensor:
        """F(v) = −vᵀb_v − Σ_j softplus((Wv + b_h)_j): (N,)."""
        return -(v @ self.b_v) - F.softplus(F.linear(v, self.W, self.b_h)).sum(-1)

    @torch.no_grad()
    def gibbs(
        self, v: torch.Tensor, k: int = 1, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """k alternating steps v → h → v, sampling binary hidden and visible states
        (from ``generator`` when given: evaluation draws its chains from a private RNG)."""
        for _ in range(k):
            h = torch.bernoulli(self.hidden_prob(v), generator=generator)
            v = torch.bernoulli(self.visible_prob(h), generator=generator)
        return v

    def cd_loss(self, v: torch.Tensor, k: int = 1) -> torch.Tensor:
        """Scalar whose gradient is the CD-k estimate of −∇ log-likelihood."""
        v = v.flatten(1)
        v_model = self.gibbs(v.detach(), k)
        return self.free_energy(v).mean() - self.free_energy(v_model).mean()

    def forward(self, v: torch.Tensor) -> torch.Tensor:
        return self.hidden_prob(v.flatten(1))

    def example_input(self, batch: int = 2) -> tuple[torch.Tensor, ...]:
        return (torch.rand(batch, self.W.shape[1]),)


class DBN(nn.Module):
    """A stack of RBMs (each one's hidden layer is the next one's visible layer) plus a head."""

    def __init__(self, sizes: list[int], num_classes: int) -> None:
        super().__init__()
        if len(sizes) < 2:
            raise ValueError("dbn needs at least [n_visible, n_hidden] in sizes")
        self.rbms = nn.ModuleList(RBM(a, b) for a, b in zip(sizes[:-1], sizes[1:], strict=False))
        self.head = nn.Linear(sizes[-1], num_classes)

    def features(self, x: torch.Tensor, upto: int | None = None) -> torch.Tensor:
        """Mean-field activations after the first ``upto`` RBMs (all by default)."""
        h = x.flatten(1)
        for rbm in self.rbms[:upto]:
            h = rbm.hidden_prob(h)
        return h

    def pretrain_loss(self, x: torch.Tensor, layer: int, k: int = 1) -> torch.Tensor:
        """CD-k loss of RBM ``layer`` on the (frozen) features of the layers below it."""
        with torch.no_grad():
            v = self.features(x, layer)
        return self.rbms[layer].cd_loss(v, k)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))  # (N, num_classes)

    def example_input(self, batch: int = 2) -> tuple[torch.Tensor, ...]:
        return (torch.rand(batch, self.rbms[0].W.shape[1]),)


@register_model("rbm")
def rbm(*, n_visible: int = 784, n_hidden: int = 128) -> nn.Module:
    """Bernoulli RBM: v (N, n_visible) in [0, 1] → p(h | v) (N, n_hidden); train with cd_loss."""
    return RBM(n_visible, n_hidden)


@register_model("dbn")
def dbn(
    *,
    sizes: list[int] = [784, 256, 128],  # noqa: B006 - never mutated
    num_classes: int = 10,
) -> nn.Module:
    """Deep belief network: RBMs of ``sizes``, pre-trained greedily, fine-tuned as a classifier."""
    return DBN(list(sizes), num_classes)
