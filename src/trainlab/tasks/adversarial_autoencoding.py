"""Adversarial autoencoder (Makhzani et al., 2015): reconstruct, and match the code to a prior.

The model (``adversarial_autoencoder``) gives ``model(x) -> (x̂, z)`` with z (N, latent) the
deterministic code, ``model.discriminator(z)`` (N, 1) logits "z came from the prior" and
``model.sample_prior(n)`` codes from N(0, I). The paper's three phases, every batch:

1. **reconstruction**: ``recon = per-pixel loss(x̂, x)`` (``bce`` or ``mse``, mean over pixels,
   x mapped onto [0, 1] with ``rescale``: the decoder ends in a sigmoid);
2. **discriminator**, stepped here with the task's own Adam (``d_lr``, ``d_betas``):
   ``d_loss = softplus(−D(z_prior)) + softplus(D(z.detach()))``, prior samples labelled 1 and
   encoded codes 0, one prior sample per image;
3. **encoder as generator**: ``g_loss = softplus(−D(z))`` (non-saturating: −log D(E(x))),
   computed with D frozen, so its gradient reaches the encoder only.

Phases 1 and 3 both update the encoder; the task returns ``recon + adv_weight · g_loss`` (default
0.1: the per-pixel reconstruction loss is ≈ 0.1–0.4 and the generator loss ≈ 0.7; measured on
digits, a weight of 1 kept reconstructions at the mean image) and the
trainer's one backward and optimizer step (over encoder and decoder: ``optim_module``) applies
both gradients at once, instead of the paper's two successive SGD steps — the same update to
first order in the learning rate, with one optimizer and the trainer's clipping, accumulation
and logging intact.

Logged per step: ``train/loss``, ``train/recon``, ``train/g_loss``, ``train/d_loss``,
``train/d_prior`` and ``train/d_code`` (mean D(·) probabilities: both drift to 0.5 as the codes
become indistinguishable from the prior). Evaluation: ``val/loss`` (reconstruction),
``val/mse`` (per pixel, whatever the loss), ``val/d_loss`` (the discriminator on validation
codes against a fixed set of prior samples drawn from a private RNG, ``eval_seed``), and
``val/z_mean_gap`` / ``val/z_std_gap``: RMS over code dimensions of the gaps between the
per-dimension means / standard deviations of the encoded codes and of the prior samples
(:class:`trainlab.tasks.task_metrics.MomentGap`), both → 0 as the aggregated posterior
approaches N(0, I).

The discriminator optimizer's state is part of ``state_dict()`` (exact resume). Not supported,
as for ``gan``: fp16 (no gradient scaler for the discriminator step) and DDP.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import nn

from trainlab.errors import ConfigError
from trainlab.tasks.autoencoding import ReconLoss, recon_per_sample
from trainlab.tasks.base import StepOutput, register_task
from trainlab.tasks.common import bare_model, to_unit_range
from trainlab.tasks.gan import frozen
from trainlab.tasks.side_optimizer import DiscriminatorTask, SideOptimizer, refuse_fp16

if TYPE_CHECKING:
    from torchmetrics import MetricCollection

__all__ = ["AAETask", "adversarial_autoencoder"]

Batch = tuple[torch.Tensor, torch.Tensor]


def _parts(model: nn.Module) -> nn.Module:
    net = bare_model(model)
    for attr in ("encoder", "decoder", "discriminator"):
        if not hasattr(net, attr):
            raise ConfigError(
                f"task adversarial_autoencoder: model {type(net).__name__} has no {attr}; "
                "use adversarial_autoencoder"
            )
    return net


def d_loss_fn(d: nn.Module, prior: torch.Tensor, code: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """(BCE loss with prior = 1 and code = 0, logits on prior (N, 1), logits on code (N, 1))."""
    d_prior, d_code = d(prior).float(), d(code).float()
    return F.softplus(-d_prior).mean() + F.softplus(d_code).mean(), d_prior, d_code


class AAETask(DiscriminatorTask):
    """Reconstruction + adversarial regularisation of the code, discriminator trained inside.

    >>> from trainlab.models import create_model
    >>> model = create_model("adversarial_autoencoder", image_size=4, hidden=[8], latent_dim=2)
    >>> out = AAETask().train_step(model, (torch.rand(6, 1, 4, 4), torch.zeros(6)))
    >>> sorted(out.extras)
    ['d_code', 'd_loss', 'd_prior', 'g_loss', 'recon']
    """

    def __init__(
        self,
        loss: ReconLoss = "bce",
        adv_weight: float = 0.1,
        d_lr: float = 2e-4,
        d_betas: tuple[float, float] = (0.5, 0.999),
        rescale: bool = True,
        eval_seed: int = 0,
    ) -> None:
        if loss not in ("bce", "mse"):
            raise ConfigError(f"task.loss: '{loss}' is not a reconstruction loss; valid: bce, mse")
        if adv_weight < 0 or d_lr <= 0:
            raise ConfigError(
                f"task.adv_weight ≥ 0 and task.d_lr > 0 needed ({adv_weight}, {d_lr})"
            )
        self.loss, self.adv_weight, self.rescale = loss, adv_weight, rescale
        self.d_lr, self.d_betas, self.eval_seed = d_lr, tuple(d_betas), eval_seed
        self.d_side = SideOptimizer(d_lr, self.d_betas)  # the discriminator's Adam

    # -- hooks the trainer and experiment call ------------------------------------------------
    def optim_module(self, model: nn.Module) -> nn.Module:
        """Encoder and decoder (parameter names as in the model: ``encoder.0.weight`` …)."""
        net = _parts(model)
        return nn.ModuleDict({"encoder": net.encoder, "decoder": net.decoder})

    def setup(self, model: nn.Module, device: torch.device) -> None:
        """Build the discriminator's Adam; a second call for the same one keeps its state."""
        self.d_side.build(_parts(model).discriminator)

    # -- steps ----------------------------------------------------------------------------------
    def _recon(self, model: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """(reconstruction loss per pixel, x̂, z, target), x̂ and target in [0, 1]."""
        target = to_unit_range(x) if self.rescale else x.float()
        x_hat, z = model(target)  # (N, C, S, S), (N, latent)
        per_pixel = recon_per_sample(x_hat, target, self.loss).mean() / target[0].numel()
        return per_pixel, x_hat, z, target

    def _d_step(self, d: nn.Module, prior: torch.Tensor, code: torch.Tensor) -> dict[str, Any]:
        d_loss, d_prior, d_code = d_loss_fn(d, prior, code)
        self.d_side.step(d_loss)
        return {
            "d_loss": d_loss.detach(),
            "d_prior": torch.sigmoid(d_prior.detach()).mean(),
            "d_code": torch.sigmoid(d_code.detach()).mean(),
        }

    def train_step(self, model: nn.Module, batch: Batch) -> StepOutput:
        net = _parts(model)
        if self.d_optimizer is None:  # a hand-written loop need not call setup() first
            self.setup(model, batch[0].device)
        refuse_fp16("adversarial_autoencoder", batch[0].device.type)
        recon, _, z, _ = self._recon(model, batch[0])  # phase 1
        prior = torch.randn_like(z, dtype=torch.float32)  # N(0, I), as model.sample_prior
        extras = self._d_step(net.discriminator, prior, z.detach().float())  # phase 2
        with frozen(net.discriminator):  # phase 3: gradients reach the encoder through D
            g_loss = F.softplus(-net.discriminator(z).float()).mean()
        extras.update(recon=recon.detach(), g_loss=g_loss.detach())
        return StepOutput(recon + self.adv_weight * g_loss, extras=extras)

    def eval_step(self, model: nn.Module, batch: Batch) -> StepOutput:
        net = _parts(model)
        recon, x_hat, z, target = self._recon(model, batch[0])
        # The same prior samples for every batch and epoch, from a private RNG.
        gen = torch.Generator(device=z.device).manual_seed(self.eval_seed)
        prior = torch.randn(z.shape, device=z.device, generator=gen)
        d_loss = d_loss_fn(net.discriminator, prior, z.float())[0]
        mse = (x_hat.float() - target).pow(2).mean()
        return StepOutput(recon, z.float(), prior, {"mse": mse, "d_loss": d_loss})

    def metrics(self, num_classes: int | None) -> MetricCollection:
        from torchmetrics import MetricCollection

        from trainlab.tasks.task_metrics import MomentGap

        return MetricCollection({"z_mean_gap": MomentGap("mean"), "z_std_gap": MomentGap("std")})


@register_task("adversarial_autoencoder")
def adversarial_autoencoder(
    *,
    loss: ReconLoss = "bce",
    adv_weight: float = 0.1,
    d_lr: float = 2e-4,
    d_betas: tuple[float, float] = (0.5, 0.999),
    rescale: bool = True,
    eval_seed: int = 0,
) -> AAETask:
    """Adversarial autoencoder: per-pixel reconstruction loss + ``adv_weight`` × the encoder's
    generator loss; the task's Adam (``d_lr``, ``d_betas``) trains the code discriminator."""
    return AAETask(loss, adv_weight, d_lr, d_betas, rescale, eval_seed)
