"""Denoising / masked autoencoding: a second self-supervised objective beside SimCLR.

The model (``autoencoder``, ``conv_autoencoder``) sees a corrupted image and must reconstruct
the clean one (Vincent et al., 2008, denoising autoencoders; He et al., 2021, masked
autoencoders, whose pixel masking this follows on a small scale):

- ``mask_ratio``: that share of the ``patch`` × ``patch`` squares of each image is blanked out
  (set to 0, the background of [0, 1] images);
- ``noise``: Gaussian noise of that standard deviation is added (then clipped to [0, 1]).

Images are first mapped onto [0, 1] (the decoders end in a sigmoid), as in the ``autoencoder``
task. The loss is the per-pixel mean squared error against the clean image, over all pixels.
Evaluation corrupts with a private RNG seeded by ``eval_seed`` (the same corruption each time);
``val/mse`` and ``val/psnr`` score the reconstruction of the clean image. The representation
for a probe is ``model.encode(x)`` of the clean image: ``trainlab probe RUN``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

from trainlab.errors import ConfigError
from trainlab.tasks.base import StepOutput, register_task
from trainlab.tasks.common import bare_model, to_unit_range

if TYPE_CHECKING:
    from torchmetrics import MetricCollection

__all__ = ["DenoisingTask", "corrupt", "denoising_autoencoder"]

Batch = tuple[torch.Tensor, torch.Tensor]


def corrupt(
    x: torch.Tensor,
    mask_ratio: float,
    patch: int,
    noise: float,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """``x`` (N, C, H, W) in [0, 1] with a random ``mask_ratio`` of its patches blanked and
    Gaussian ``noise`` added; ``generator`` None draws from torch's global RNG.

    >>> x = torch.ones(2, 1, 8, 8)
    >>> y = corrupt(x, 0.5, 4, 0.0)
    >>> [float(v) for v in (y == 0).float().mean((1, 2, 3))]   # 2 of 4 patches per image
    [0.5, 0.5]
    """
    n, _, h, w = x.shape
    device = generator.device if generator is not None else x.device
    out = x
    if mask_ratio > 0:
        gh, gw = -(-h // patch), -(-w // patch)  # patch grid, the last row/column may be cut
        scores = torch.rand(n, gh * gw, generator=generator, device=device)
        k = round(mask_ratio * gh * gw)
        keep = torch.ones(n, gh * gw, device=device)
        keep.scatter_(1, scores.argsort(1)[:, :k], 0.0)  # the k lowest scores: masked
        keep = keep.view(n, 1, gh, gw).to(x.device, x.dtype)
        full = F.interpolate(keep, scale_factor=patch, mode="nearest")[..., :h, :w]
        out = out * full
    if noise > 0:
        eps = torch.randn(x.shape, generator=generator, device=device).to(x.device, x.dtype)
        out = (out + noise * eps).clamp(0, 1)
    return out


class DenoisingTask:
    """Reconstruct clean images from corrupted ones (masked patches, Gaussian noise).

    >>> from trainlab.models import create_model
    >>> m = create_model("conv_autoencoder", latent_dim=8, channels=[8, 16])
    >>> out = DenoisingTask().train_step(m, (torch.randn(4, 1, 28, 28), torch.zeros(4)))
    >>> bool(out.loss > 0)
    True
    """

    def __init__(
        self, mask_ratio: float = 0.5, patch: int = 4, noise: float = 0.0, eval_seed: int = 0
    ) -> None:
        if not 0 <= mask_ratio < 1:
            raise ConfigError(f"task.mask_ratio: must be in [0, 1) (got {mask_ratio})")
        if patch < 1:
            raise ConfigError(f"task.patch: must be at least 1 pixel (got {patch})")
        if noise < 0:
            raise ConfigError(f"task.noise: must be ≥ 0 (got {noise})")
        if mask_ratio == 0 and noise == 0:
            raise ConfigError("task: set mask_ratio > 0 or noise > 0 (else use task autoencoder)")
        self.mask_ratio, self.patch, self.noise = mask_ratio, patch, noise
        self.eval_seed = eval_seed

    def _terms(
        self, model: nn.Module, x: torch.Tensor, gen: torch.Generator | None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        if x.dim() != 4:
            raise ConfigError(f"task denoising_autoencoder: needs images, got {tuple(x.shape)}")
        clean = to_unit_range(x)
        out = model(corrupt(clean, self.mask_ratio, self.patch, self.noise, gen))
        recon = (out[0] if isinstance(out, tuple) else out).float()
        return F.mse_loss(recon, clean.float()), recon, clean

    def train_step(self, model: nn.Module, batch: Batch) -> StepOutput:
        return StepOutput(self._terms(model, batch[0], None)[0])  # global RNG: checkpointed

    def eval_step(self, model: nn.Module, batch: Batch) -> StepOutput:
        gen = torch.Generator(device=batch[0].device).manual_seed(self.eval_seed)
        loss, recon, clean = self._terms(model, batch[0], gen)
        return StepOutput(loss, recon, clean.float())

    def features(self, model: nn.Module, x: torch.Tensor) -> torch.Tensor:
        """The representation of clean images for a probe: ``model.encode`` of what the model
        was trained on ([0, 1] images), (N, latent)."""
        return bare_model(model).encode(to_unit_range(x))

    def metrics(self, num_classes: int | None) -> MetricCollection:
        from torchmetrics import MetricCollection
        from torchmetrics.image import PeakSignalNoiseRatio
        from torchmetrics.regression import MeanSquaredError

        return MetricCollection(
            {"mse": MeanSquaredError(), "psnr": PeakSignalNoiseRatio(data_range=1.0)}
        )


@register_task("denoising_autoencoder")
def denoising_autoencoder(
    *,
    mask_ratio: float = 0.5,  # share of the patches blanked in each image, [0, 1)
    patch: int = 4,  # side of a masked square in pixels
    noise: float = 0.0,  # standard deviation of added Gaussian noise ([0, 1] images)
    eval_seed: int = 0,  # seeds the evaluation corruption (the same every evaluation)
) -> DenoisingTask:
    """Self-supervised reconstruction (``conv_autoencoder``): blank ``mask_ratio`` of the
    ``patch``-pixel squares and/or add Gaussian ``noise``; reconstruct the clean image."""
    return DenoisingTask(mask_ratio, patch, noise, eval_seed)
