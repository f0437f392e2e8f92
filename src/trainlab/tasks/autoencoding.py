"""Autoencoders and variational autoencoders: reconstruct the input; the VAE optimises the ELBO.

Batches are images ``(x (N, C, H, W), labels)``; labels are ignored. The decoders of
``autoencoder`` / ``conv_autoencoder`` / ``vae`` / ``conv_vae`` end in a sigmoid, so with
``rescale`` (default) each batch is first mapped onto [0, 1]
(:func:`trainlab.tasks.common.to_unit_range`: the data modules hand out standardised pixels).
Model input and reconstruction target are that rescaled batch.

VAE objective, per sample (Kingma & Welling, 2013)::

    loss = recon(x, x̂) + β · KL(q(z|x) ‖ N(0, I))       (the negative ELBO when β = 1)

``recon`` is summed over pixels: Bernoulli log-likelihood (``bce``) or squared error (``mse``,
a unit-variance Gaussian up to constants). Both terms are logged every step as ``train/recon``
and ``train/kl``, and over the validation split as ``val/recon``, ``val/kl`` and ``val/nelbo``
(recon + KL, the β = 1 bound whatever β trains with). Evaluation encodes with z = μ (the
models' eval mode), so validation figures are deterministic.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import torch
from torch import nn

from trainlab.errors import ConfigError
from trainlab.tasks.base import StepOutput, register_task
from trainlab.tasks.common import to_unit_range

if TYPE_CHECKING:
    from torchmetrics import MetricCollection

__all__ = ["AutoencoderTask", "VAETask", "autoencoder", "vae"]

Batch = tuple[torch.Tensor, torch.Tensor]
ReconLoss = Literal["bce", "mse"]


def recon_per_sample(recon: torch.Tensor, target: torch.Tensor, loss: ReconLoss) -> torch.Tensor:
    """Reconstruction error summed over all but the batch dimension: (N, …) → (N,).

    BCE is written out rather than ``F.binary_cross_entropy``, which autocast refuses; inputs are
    clamped away from 0 and 1 so a saturated sigmoid costs a large finite loss, not inf.
    """
    r, t = recon.float().flatten(1), target.float().flatten(1)
    if loss == "mse":
        return (r - t).pow(2).sum(1)
    r = r.clamp(1e-6, 1 - 1e-6)
    return -(t * r.log() + (1 - t) * (1 - r).log()).sum(1)


def kl_per_sample(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(μ, σ²) ‖ N(0, I)) summed over latent dimensions: (N, D) → (N,)."""
    mu, logvar = mu.float(), logvar.float()
    return -0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum(1)


class AutoencoderTask:
    """Reconstruction loss (per-pixel mean); ``val/mse`` and ``val/psnr`` in [0, 1] units.

    >>> from trainlab.models import create_model
    >>> model = create_model("autoencoder", image_size=8, hidden=[16], latent_dim=4)
    >>> out = AutoencoderTask().train_step(model, (torch.randn(5, 1, 8, 8), torch.zeros(5)))
    >>> bool(out.loss > 0)
    True
    """

    def __init__(self, loss: ReconLoss = "mse", rescale: bool = True) -> None:
        if loss not in ("bce", "mse"):
            raise ConfigError(f"task.loss: '{loss}' is not a reconstruction loss; valid: bce, mse")
        self.loss, self.rescale = loss, rescale

    def _forward(self, model: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        target = to_unit_range(x) if self.rescale else x
        out = model(target)
        # The adversarial autoencoder returns (reconstruction, code); trained here as a plain AE.
        recon = out[0] if isinstance(out, tuple) else out
        return recon, target

    def train_step(self, model: nn.Module, batch: Batch) -> StepOutput:
        recon, target = self._forward(model, batch[0])
        return StepOutput(recon_per_sample(recon, target, self.loss).mean() / target[0].numel())

    def eval_step(self, model: nn.Module, batch: Batch) -> StepOutput:
        recon, target = self._forward(model, batch[0])
        loss = recon_per_sample(recon, target, self.loss).mean() / target[0].numel()
        return StepOutput(loss, recon.float(), target.float())

    def metrics(self, num_classes: int | None) -> MetricCollection:
        from torchmetrics import MetricCollection
        from torchmetrics.image import PeakSignalNoiseRatio
        from torchmetrics.regression import MeanSquaredError

        return MetricCollection(
            {"mse": MeanSquaredError(), "psnr": PeakSignalNoiseRatio(data_range=1.0)}
        )


class VAETask:
    """Negative ELBO with a β-weighted KL term; the two terms are logged as extras.

    >>> from trainlab.models import create_model
    >>> model = create_model("vae", image_size=8, hidden=[16], latent_dim=2)
    >>> out = VAETask(beta=1.0).train_step(model, (torch.randn(5, 1, 8, 8), torch.zeros(5)))
    >>> sorted(out.extras)
    ['kl', 'recon']
    """

    def __init__(self, beta: float = 1.0, loss: ReconLoss = "bce", rescale: bool = True) -> None:
        if beta < 0:
            raise ConfigError(f"task.beta: must be ≥ 0 (got {beta})")
        if loss not in ("bce", "mse"):
            raise ConfigError(f"task.loss: '{loss}' is not a reconstruction loss; valid: bce, mse")
        self.beta, self.loss, self.rescale = beta, loss, rescale

    def _terms(self, model: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        target = to_unit_range(x) if self.rescale else x
        out = model(target)
        if not (isinstance(out, tuple) and len(out) == 3):
            raise ConfigError(
                "task vae: the model must return (reconstruction, mu, logvar); use vae or conv_vae"
            )
        recon, mu, logvar = out
        return recon_per_sample(recon, target, self.loss), kl_per_sample(mu, logvar)  # (N,) ×2

    def train_step(self, model: nn.Module, batch: Batch) -> StepOutput:
        recon, kl = self._terms(model, batch[0])
        loss = (recon + self.beta * kl).mean()
        return StepOutput(loss, extras={"recon": recon.mean().detach(), "kl": kl.mean().detach()})

    def eval_step(self, model: nn.Module, batch: Batch) -> StepOutput:
        recon, kl = self._terms(model, batch[0])
        per_sample = torch.stack([recon, kl, recon + kl], dim=1)  # (N, 3) → val/recon, kl, nelbo
        return StepOutput((recon + self.beta * kl).mean(), per_sample)

    def metrics(self, num_classes: int | None) -> MetricCollection:
        from torchmetrics import MetricCollection

        from trainlab.tasks.task_metrics import ColumnMean

        columns = {"recon": ColumnMean(0), "kl": ColumnMean(1), "nelbo": ColumnMean(2)}
        # compute_groups off: torchmetrics would merge metrics whose states happen to be equal
        # after the first batch, and these differ only in the column they read.
        return MetricCollection(columns, compute_groups=False)


@register_task("autoencoder")
def autoencoder(*, loss: ReconLoss = "mse", rescale: bool = True) -> AutoencoderTask:
    """Reconstruct the input (``autoencoder``, ``conv_autoencoder``): per-pixel MSE or BCE.
    ``rescale``: map each batch onto [0, 1] first (the decoders end in a sigmoid)."""
    return AutoencoderTask(loss, rescale)


@register_task("vae")
def vae(*, beta: float = 1.0, loss: ReconLoss = "bce", rescale: bool = True) -> VAETask:
    """Variational autoencoder (``vae``, ``conv_vae``): minimise recon + β·KL per sample;
    ``beta`` > 1 trades reconstruction for a more factorised code (β-VAE)."""
    return VAETask(beta, loss, rescale)
