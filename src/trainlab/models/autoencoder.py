"""Autoencoders: MLP and convolutional, plus the adversarial autoencoder (Makhzani et al., 2015).

Images are (N, C, S, S) with values in [0, 1]; reconstructions pass through a sigmoid so they
can be compared with binary cross-entropy or MSE.

Forward contracts
-----------------
- ``autoencoder`` / ``conv_autoencoder``: ``model(x) -> reconstruction`` (same shape as x);
  ``model.encode(x) -> z (N, latent_dim)``, ``model.decode(z)``.
- ``adversarial_autoencoder``: ``model(x) -> (reconstruction, z)``; ``model.discriminator(z)``
  gives (N, 1) logits "z came from the prior", ``model.sample_prior(n)`` draws N(0, I) codes.
  Training alternates reconstruction, discriminator and encoder-as-generator steps (a task).
"""

from __future__ import annotations

import torch
from torch import nn

from trainlab.models.examples import image_batch
from trainlab.models.layers import make_act
from trainlab.models.registry import register_model

__all__ = [
    "AdversarialAutoencoder",
    "Autoencoder",
    "conv_decoder",
    "conv_encoder",
    "mlp_pair",
    "mlp_stack",
]


def mlp_stack(widths: list[int], act: str, last_act: bool = False) -> nn.Sequential:
    """Linear layers widths[0] → … → widths[-1], activation between (and optionally after)."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(widths[:-1], widths[1:], strict=False)):
        layers.append(nn.Linear(a, b))
        if i < len(widths) - 2 or last_act:
            layers.append(make_act(act))
    return nn.Sequential(*layers)


def conv_encoder(in_channels: int, image_size: int, channels: list[int], out: int) -> nn.Sequential:
    """Stride-2 4×4 convs halve S per layer: (N, C, S, S) → (N, channels[-1], S/2^k, S/2^k) →
    (N, out)."""
    layers: list[nn.Module] = []
    c = in_channels
    for w in channels:
        layers += [nn.Conv2d(c, w, 4, 2, 1), nn.BatchNorm2d(w), nn.LeakyReLU(0.2, inplace=True)]
        c = w
    side = image_size // 2 ** len(channels)
    return nn.Sequential(*layers, nn.Flatten(), nn.Linear(c * side * side, out))


def conv_decoder(
    latent: int, image_size: int, channels: list[int], out_channels: int
) -> nn.Sequential:
    """Mirror of :func:`conv_encoder`: (N, latent) → (N, channels[0], s, s) → ×2 per layer →
    (N, C, S, S)."""
    if image_size % 2 ** len(channels):
        raise ValueError(f"image_size {image_size} must be divisible by 2^{len(channels)}")
    side = image_size // 2 ** len(channels)
    layers: list[nn.Module] = [
        nn.Linear(latent, channels[0] * side * side),
        nn.ReLU(inplace=True),
        nn.Unflatten(1, (channels[0], side, side)),
    ]
    for a, b in zip(channels, channels[1:], strict=False):
        layers += [nn.ConvTranspose2d(a, b, 4, 2, 1), nn.BatchNorm2d(b), nn.ReLU(inplace=True)]
    layers.append(nn.ConvTranspose2d(channels[-1], out_channels, 4, 2, 1))
    return nn.Sequential(*layers)


class Autoencoder(nn.Module):
    """x → encoder → z (N, latent_dim) → decoder → sigmoid → x̂ (N, C, S, S)."""

    def __init__(self, encoder: nn.Module, decoder: nn.Module, in_channels: int, image_size: int):
        super().__init__()
        self.in_channels, self.image_size = in_channels, image_size
        self.encoder, self.decoder = encoder, decoder

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        x = self.decoder(z)
        return torch.sigmoid(x.view(-1, self.in_channels, self.image_size, self.image_size))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))

    def example_input(self, batch: int = 2) -> tuple[torch.Tensor, ...]:
        return (image_batch(batch, self.in_channels, self.image_size)[0].sigmoid(),)


class AdversarialAutoencoder(nn.Module):
    """An autoencoder whose code distribution is pushed towards N(0, I) by a discriminator."""

    def __init__(
        self,
        encoder: nn.Module,
        decoder: nn.Module,
        discriminator: nn.Module,
        latent_dim: int,
        in_channels: int,
        image_size: int,
    ) -> None:
        super().__init__()
        self.in_channels, self.image_size, self.latent_dim = in_channels, image_size, latent_dim
        self.encoder, self.decoder, self.discriminator = encoder, decoder, discriminator

    def sample_prior(self, n: int) -> torch.Tensor:
        """n codes from the target prior N(0, I): the discriminator's "real" examples."""
        return torch.randn(n, self.latent_dim, device=next(self.parameters()).device)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z = self.encoder(x)  # (N, latent_dim)
        x_hat = torch.sigmoid(self.decoder(z)).view(
            -1, self.in_channels, self.image_size, self.image_size
        )
        return x_hat, z

    def example_input(self, batch: int = 2) -> tuple[torch.Tensor, ...]:
        return (image_batch(batch, self.in_channels, self.image_size)[0].sigmoid(),)


def mlp_pair(
    in_channels: int, image_size: int, hidden: list[int], latent: int, act: str, code: int = 0
) -> tuple[nn.Sequential, nn.Sequential]:
    """MLP encoder (N, C, S, S) → (N, code or latent) and decoder (N, latent) → (N, C·S·S)."""
    d = in_channels * image_size * image_size
    enc = nn.Sequential(nn.Flatten(), mlp_stack([d, *hidden, code or latent], act))
    dec = mlp_stack([latent, *reversed(hidden), d], act)
    return enc, dec


@register_model("autoencoder")
def autoencoder(
    *,
    in_channels: int = 1,
    image_size: int = 28,
    latent_dim: int = 32,
    hidden: list[int] = [256, 128],  # noqa: B006 - never mutated
    act: str = "relu",
) -> nn.Module:
    """MLP autoencoder: (N, C, S, S) → code (N, latent_dim) → reconstruction (N, C, S, S)."""
    enc, dec = mlp_pair(in_channels, image_size, list(hidden), latent_dim, act)
    return Autoencoder(enc, dec, in_channels, image_size)


@register_model("conv_autoencoder")
def conv_autoencoder(
    *,
    in_channels: int = 1,
    image_size: int = 28,
    latent_dim: int = 32,
    channels: list[int] = [32, 64],  # noqa: B006 - never mutated
) -> nn.Module:
    """Convolutional autoencoder: stride-2 convs down to (S/4)², transposed convs back up."""
    enc = conv_encoder(in_channels, image_size, list(channels), latent_dim)
    dec = conv_decoder(latent_dim, image_size, list(reversed(channels)), in_channels)
    return Autoencoder(enc, dec, in_channels, image_size)


@register_model("adversarial_autoencoder")
def adversarial_autoencoder(
    *,
    in_channels: int = 1,
    image_size: int = 28,
    latent_dim: int = 8,
    hidden: list[int] = [512, 256],  # noqa: B006 - never mutated
    disc_hidden: int = 256,
    act: str = "relu",
) -> nn.Module:
    """Adversarial autoencoder (MLP): ``model(x) -> (reconstruction, z)``; see module docs."""
    enc, dec = mlp_pair(in_channels, image_size, list(hidden), latent_dim, act)
    disc = nn.Sequential(
        mlp_stack([latent_dim, disc_hidden, disc_hidden], "leaky_relu", True),
        nn.Linear(disc_hidden, 1),
    )
    return AdversarialAutoencoder(enc, dec, disc, latent_dim, in_channels, image_size)
