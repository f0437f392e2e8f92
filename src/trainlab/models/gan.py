"""GANs (Goodfellow et al., 2014) with MLP networks, and DCGAN (Radford et al., 2015).

A GAN is one module holding both players, so a recipe names one model and the GAN task trains
``model.generator`` and ``model.discriminator`` with their own optimizers.

Forward contract: ``model(z (N, latent_dim)) -> images (N, C, S, S)`` in [-1, 1] (tanh): the
generator. ``model.discriminator(images) -> (N, 1)`` logits "real"; ``model.sample(n)`` draws
z ~ N(0, I) and generates.
"""

from __future__ import annotations

import torch
from torch import nn

from trainlab.models.autoencoder import mlp_stack
from trainlab.models.registry import register_model

__all__ = ["GAN", "dcgan_discriminator", "dcgan_generator"]


class GAN(nn.Module):
    def __init__(self, generator: nn.Module, discriminator: nn.Module, latent_dim: int) -> None:
        super().__init__()
        self.generator, self.discriminator, self.latent_dim = generator, discriminator, latent_dim

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.generator(z)

    def sample(self, n: int) -> torch.Tensor:
        """n generated images from z ~ N(0, I)."""
        z = torch.randn(n, self.latent_dim, device=next(self.parameters()).device)
        return self.generator(z)

    def example_input(self, batch: int = 2) -> tuple[torch.Tensor, ...]:
        return (torch.randn(batch, self.latent_dim),)


def dcgan_generator(latent_dim: int, channels: int, image_size: int, width: int) -> nn.Sequential:
    """(N, latent) → FC → (N, 2w, S/4, S/4) → convT ×2 → (N, w, S/2, S/2) → convT → (N, C, S, S)."""
    s = image_size // 4
    return nn.Sequential(
        nn.Linear(latent_dim, 2 * width * s * s, bias=False),
        nn.Unflatten(1, (2 * width, s, s)),
        nn.BatchNorm2d(2 * width),
        nn.ReLU(inplace=True),
        nn.ConvTranspose2d(2 * width, width, 4, 2, 1, bias=False),
        nn.BatchNorm2d(width),
        nn.ReLU(inplace=True),
        nn.ConvTranspose2d(width, channels, 4, 2, 1),
        nn.Tanh(),
    )


def dcgan_discriminator(channels: int, image_size: int, width: int) -> nn.Sequential:
    """Strided convs, LeakyReLU, batch norm (not on the first layer), no pooling → (N, 1) logit."""
    s = image_size // 4
    return nn.Sequential(
        nn.Conv2d(channels, width, 4, 2, 1),
        nn.LeakyReLU(0.2, inplace=True),
        nn.Conv2d(width, 2 * width, 4, 2, 1, bias=False),
        nn.BatchNorm2d(2 * width),
        nn.LeakyReLU(0.2, inplace=True),
        nn.Flatten(),
        nn.Linear(2 * width * s * s, 1),
    )


def _dcgan_init(m: nn.Module) -> None:
    # DCGAN paper: all weights from N(0, 0.02); batch-norm scales from N(1, 0.02).
    if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
        nn.init.normal_(m.weight, 0.0, 0.02)
    elif isinstance(m, nn.BatchNorm2d):
        nn.init.normal_(m.weight, 1.0, 0.02)
        nn.init.zeros_(m.bias)


@register_model("gan")
def gan(
    *,
    latent_dim: int = 64,
    in_channels: int = 1,
    image_size: int = 28,
    hidden: list[int] = [256, 512],  # noqa: B006 - never mutated
    act: str = "leaky_relu",
) -> nn.Module:
    """MLP GAN: generator z → hidden → image (tanh); discriminator image → hidden → logit."""
    d = in_channels * image_size * image_size
    gen = nn.Sequential(
        mlp_stack([latent_dim, *hidden, d], act),
        nn.Tanh(),
        nn.Unflatten(1, (in_channels, image_size, image_size)),
    )
    disc = nn.Sequential(nn.Flatten(), mlp_stack([d, *reversed(hidden), 1], act))
    return GAN(gen, disc, latent_dim)


@register_model("dcgan")
def dcgan(
    *,
    latent_dim: int = 64,
    in_channels: int = 1,
    image_size: int = 28,
    width: int = 64,
) -> nn.Module:
    """DCGAN for S×S images (S divisible by 4): transposed-conv generator, strided-conv critic."""
    if image_size % 4:
        raise ValueError(f"dcgan needs image_size divisible by 4, got {image_size}")
    model = GAN(
        dcgan_generator(latent_dim, in_channels, image_size, width),
        dcgan_discriminator(in_channels, image_size, width),
        latent_dim,
    )
    model.apply(_dcgan_init)
    return model
