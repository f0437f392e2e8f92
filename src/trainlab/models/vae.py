"""Variational autoencoder (Kingma & Welling, 2013), MLP and convolutional.

Forward contract: ``model(x (N, C, S, S)) -> (reconstruction (N, C, S, S) in [0, 1],
mu (N, latent_dim), logvar (N, latent_dim))``. The loss (a task's job) is reconstruction plus
β·KL; :func:`kl_divergence` computes the KL term. ``model.sample(n)`` decodes prior draws.
"""

from __future__ import annotations

import torch
from torch import nn

from trainlab.models.autoencoder import conv_decoder, conv_encoder, mlp_pair
from trainlab.models.examples import image_batch
from trainlab.models.registry import register_model

__all__ = ["VAE", "kl_divergence", "reparameterize"]


def reparameterize(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """z = mu + sigma · eps with eps ~ N(0, I): a sample that gradients can flow through."""
    return mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)


def kl_divergence(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, sigma²) ‖ N(0, I)) summed over latent dims, averaged over the batch: a scalar."""
    return (-0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum(-1)).mean()


class VAE(nn.Module):
    """Encoder → (mu, logvar) → z (sampled in training, z = mu in eval) → decoder → sigmoid."""

    def __init__(
        self,
        encoder: nn.Module,
        decoder: nn.Module,
        latent_dim: int,
        in_channels: int,
        image_size: int,
    ) -> None:
        super().__init__()
        self.latent_dim, self.in_channels, self.image_size = latent_dim, in_channels, image_size
        self.encoder = encoder  # (N, C, S, S) → (N, 2 · latent_dim): mu and logvar side by side
        self.decoder = decoder

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, logvar = self.encoder(x).chunk(2, dim=-1)
        return mu, logvar

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        x = self.decoder(z)
        return torch.sigmoid(x.view(-1, self.in_channels, self.image_size, self.image_size))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        mu, logvar = self.encode(x)
        # Evaluation uses the mean code: reconstructions are deterministic.
        z = reparameterize(mu, logvar) if self.training else mu
        return self.decode(z), mu, logvar

    @torch.no_grad()
    def sample(self, n: int) -> torch.Tensor:
        """n images decoded from z ~ N(0, I): (n, C, S, S)."""
        z = torch.randn(n, self.latent_dim, device=next(self.parameters()).device)
        return self.decode(z)

    def example_input(self, batch: int = 2) -> tuple[torch.Tensor, ...]:
        return (image_batch(batch, self.in_channels, self.image_size)[0].sigmoid(),)


@register_model("vae")
def vae(
    *,
    in_channels: int = 1,
    image_size: int = 28,
    latent_dim: int = 16,
    hidden: list[int] = [512, 256],  # noqa: B006 - never mutated
    act: str = "relu",
) -> nn.Module:
    """MLP VAE: x → (x̂, mu, logvar); see the module docstring for the contract."""
    enc, dec = mlp_pair(in_channels, image_size, list(hidden), latent_dim, act, code=2 * latent_dim)
    return VAE(enc, dec, latent_dim, in_channels, image_size)


@register_model("conv_vae")
def conv_vae(
    *,
    in_channels: int = 1,
    image_size: int = 28,
    latent_dim: int = 16,
    channels: list[int] = [32, 64],  # noqa: B006 - never mutated
) -> nn.Module:
    """Convolutional VAE: x → (x̂, mu, logvar); stride-2 convs down, transposed convs up."""
    enc = conv_encoder(in_channels, image_size, list(channels), 2 * latent_dim)
    dec = conv_decoder(latent_dim, image_size, list(reversed(channels)), in_channels)
    return VAE(enc, dec, latent_dim, in_channels, image_size)
