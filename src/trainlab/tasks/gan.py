"""GAN training as a task: alternating discriminator and generator steps, two optimizers.

The model (``gan``, ``dcgan``) holds both players: ``model.generator`` (z (N, latent) → images
in [-1, 1]) and ``model.discriminator`` (images → (N, 1) logits "real"). One training step:

1. ``fake = G(z)`` for z ~ N(0, I), one per real image of the batch;
2. **discriminator step**, done here with the task's own Adam (``d_lr``, ``d_betas``):
   ``d_loss = softplus(−D(real)) + softplus(D(fake.detach()))`` (binary cross-entropy with
   labels real = 1, fake = 0), backward, step — ``d_steps`` times on the same batch;
3. **generator loss**, returned to the trainer: the non-saturating
   ``softplus(−D(fake))`` (= −log D(G(z)); Goodfellow et al. 2014, §3), whose gradient stays
   strong while D still rejects the fakes. The trainer runs backward and steps the recipe's
   optimizer, which updates ``task.optim_module(model)`` = the generator only.

While the generator loss is built, the discriminator's parameters do not require gradients, so
the trainer's backward neither computes nor leaves G-loss gradients in D (and gradient clipping
sees only the generator's). Real images are rescaled onto [-1, 1], the tanh range
(``rescale``; see :func:`trainlab.tasks.common.to_unit_range`).

Logged per step: ``train/loss`` (generator), ``train/d_loss``, ``train/d_real`` and
``train/d_fake`` (mean D(·) probabilities). Evaluation draws a fixed set of latent codes from
its own generator (``eval_seed``; the training RNG is untouched) and reports ``val/loss``
(the discriminator's loss on held-out real images against those fakes), ``val/mean_gap`` and
``val/std_gap`` (RMS gaps between per-pixel means / stds of generated and real images, in the
[-1, 1] scale: see :class:`trainlab.tasks.task_metrics.MomentGap`).

The discriminator optimizer's state is part of ``state_dict()``, for exact resume. Not
supported: fp16 (the discriminator step has no gradient scaler: a ConfigError; bf16 and fp32
are fine) and DistributedDataParallel (the players are called outside DDP's forward, so their
gradients would not be averaged across ranks).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import nn

from trainlab.errors import ConfigError
from trainlab.tasks.base import StepOutput, register_task
from trainlab.tasks.common import bare_model, to_unit_range
from trainlab.tasks.side_optimizer import DiscriminatorTask, SideOptimizer, refuse_fp16

if TYPE_CHECKING:
    from torchmetrics import MetricCollection

__all__ = ["GANTask", "gan"]

Batch = tuple[torch.Tensor, torch.Tensor]


@contextmanager
def frozen(module: nn.Module) -> Iterator[None]:
    """Parameters of ``module`` do not require gradients inside the block.

    A graph built inside keeps treating them as constants after the block ends: autograd
    records at forward time which leaves need gradients.
    """
    flags = [p.requires_grad for p in module.parameters()]
    for p in module.parameters():
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p, flag in zip(module.parameters(), flags):
            p.requires_grad_(flag)


def _players(model: nn.Module) -> tuple[nn.Module, nn.Module, int]:
    net = bare_model(model)
    g, d = getattr(net, "generator", None), getattr(net, "discriminator", None)
    if g is None or d is None or not hasattr(net, "latent_dim"):
        raise ConfigError(
            f"task gan: model {type(net).__name__} needs generator, discriminator and "
            "latent_dim; use gan or dcgan"
        )
    return g, d, int(net.latent_dim)


class GANTask(DiscriminatorTask):
    """Non-saturating GAN objective with the discriminator trained inside ``train_step``.

    >>> from trainlab.models import create_model
    >>> model = create_model("gan", latent_dim=4, image_size=4, hidden=[8])
    >>> task = GANTask()
    >>> task.setup(model, torch.device("cpu"))
    >>> out = task.train_step(model, (torch.randn(6, 1, 4, 4), torch.zeros(6)))
    >>> sorted(out.extras)
    ['d_fake', 'd_loss', 'd_real']
    """

    def __init__(
        self,
        d_lr: float = 2e-4,
        d_betas: tuple[float, float] = (0.5, 0.999),
        d_steps: int = 1,
        rescale: bool = True,
        eval_seed: int = 0,
    ) -> None:
        if d_lr <= 0 or d_steps < 1:
            raise ConfigError(f"task.d_lr > 0 and task.d_steps ≥ 1 needed ({d_lr}, {d_steps})")
        self.d_lr, self.d_betas, self.d_steps = d_lr, tuple(d_betas), d_steps
        self.rescale, self.eval_seed = rescale, eval_seed
        self.d_side = SideOptimizer(d_lr, self.d_betas)  # the discriminator's Adam

    # -- hooks the trainer and experiment call ------------------------------------------------
    def optim_module(self, model: nn.Module) -> nn.Module:
        """The recipe's optimizer trains the generator; the discriminator is this task's."""
        return _players(model)[0]

    def setup(self, model: nn.Module, device: torch.device) -> None:
        """Build the discriminator's Adam (the model is already on ``device``); a second call
        for the same discriminator keeps the optimizer and its state."""
        self.d_side.build(_players(model)[1])

    # -- steps ----------------------------------------------------------------------------------
    def _real(self, x: torch.Tensor) -> torch.Tensor:
        return to_unit_range(x) * 2 - 1 if self.rescale else x  # [-1, 1]: the tanh range

    def _d_step(self, d: nn.Module, real: torch.Tensor, fake: torch.Tensor) -> dict[str, Any]:
        for _ in range(self.d_steps):
            d_real, d_fake = d(real).float(), d(fake).float()  # (N, 1) logits
            d_loss = F.softplus(-d_real).mean() + F.softplus(d_fake).mean()
            self.d_side.step(d_loss)
        return {
            "d_loss": d_loss.detach(),
            "d_real": torch.sigmoid(d_real.detach()).mean(),
            "d_fake": torch.sigmoid(d_fake.detach()).mean(),
        }

    def train_step(self, model: nn.Module, batch: Batch) -> StepOutput:
        g, d, latent = _players(model)
        real = self._real(batch[0])  # (N, C, H, W)
        if self.d_optimizer is None:  # a hand-written loop need not call setup() first
            self.setup(model, real.device)
        refuse_fp16("gan", real.device.type)
        z = torch.randn(len(real), latent, device=real.device)
        fake = g(z)
        extras = self._d_step(d, real, fake.detach())
        with frozen(d):  # gradients reach G through D, but D's own stay untouched
            g_loss = F.softplus(-d(fake).float()).mean()
        return StepOutput(g_loss, extras=extras)

    def eval_step(self, model: nn.Module, batch: Batch) -> StepOutput:
        g, d, latent = _players(model)
        real = self._real(batch[0])
        # The same codes for every batch and epoch, from a private RNG: comparable epochs, and
        # evaluation never shifts the training RNG stream.
        gen = torch.Generator(device=real.device).manual_seed(self.eval_seed)
        z = torch.randn(len(real), latent, device=real.device, generator=gen)
        fake = g(z).float()
        d_loss = F.softplus(-d(real).float()).mean() + F.softplus(d(fake).float()).mean()
        return StepOutput(d_loss, fake, real.float())

    def metrics(self, num_classes: int | None) -> MetricCollection:
        from torchmetrics import MetricCollection

        from trainlab.tasks.task_metrics import MomentGap

        return MetricCollection({"mean_gap": MomentGap("mean"), "std_gap": MomentGap("std")})


@register_task("gan")
def gan(
    *,
    d_lr: float = 2e-4,
    d_betas: tuple[float, float] = (0.5, 0.999),
    d_steps: int = 1,
    rescale: bool = True,
    eval_seed: int = 0,
) -> GANTask:
    """GAN / DCGAN: the recipe's optimizer trains the generator, the task's Adam
    (``d_lr``, ``d_betas``) the discriminator, ``d_steps`` times per batch."""
    return GANTask(d_lr, d_betas, d_steps, rescale, eval_seed)
