"""Denoising diffusion (DDPM; Ho et al., 2020) as a task: ε-prediction with uniformly drawn t.

The model (``ddpm_unet``, or any module ``model(x_t, t) -> ε̂`` of x_t's shape) learns to
predict the noise mixed into an image. One training step, for a batch x_0 (N, C, H, W) of real
images rescaled onto [−1, 1] (``rescale``; see :func:`trainlab.tasks.common.to_unit_range`):

1. t ~ U{0, …, T−1} and ε ~ N(0, I), one per image;
2. x_t = √ᾱ_t · x_0 + √(1 − ᾱ_t) · ε (the ``schedule``: ``linear`` or ``cosine``);
3. loss = ‖ε − model(x_t, t)‖² averaged over pixels and images (the "simple" objective, eq. 14).

Evaluation computes the same loss with t and ε from a private generator (``eval_seed``): the
same draws every epoch, so ``val/loss`` is comparable across epochs and the training RNG stream
is untouched. Images come from noise with ``sample_images`` (DDIM, ``grid_steps`` steps, for the
``sample_grid`` callback) or :func:`trainlab.tasks.diffusion_schedule.sample` (DDPM or DDIM, as
``trainlab sample RUN --sampler ddpm|ddim --steps N`` does).

>>> from trainlab.models import create_model
>>> net = create_model("ddpm_unet", base=8, mults=[1], attention=False)
>>> out = DiffusionTask(timesteps=50).train_step(net, (torch.randn(4, 1, 8, 8), torch.zeros(4)))
>>> out.loss.shape
torch.Size([])
"""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Literal

import torch
import torch.nn.functional as F
from torch import nn

from trainlab.errors import ConfigError
from trainlab.tasks.base import StepOutput, register_task
from trainlab.tasks.common import bare_model, to_unit_range
from trainlab.tasks.diffusion_schedule import NoiseSchedule, sample

if TYPE_CHECKING:
    from torchmetrics import MetricCollection

__all__ = ["DiffusionTask", "diffusion", "check_denoiser"]

Batch = tuple[torch.Tensor, torch.Tensor]
Schedule = Literal["linear", "cosine"]


def check_denoiser(model: nn.Module) -> nn.Module:
    """The bare model, if its forward takes (x_t, t); else a one-line :class:`ConfigError`."""
    net = bare_model(model)
    params = [
        p for p in inspect.signature(net.forward).parameters.values()
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]  # fmt: skip
    if len(params) < 2:
        raise ConfigError(
            f"task diffusion: model {type(net).__name__} takes one input, not (x_t, t): it is "
            "not a noise predictor; use model.name=ddpm_unet"
        )
    return net


class DiffusionTask:
    """ε-prediction MSE at uniformly drawn steps; see the module docstring."""

    def __init__(
        self,
        schedule: Schedule = "cosine",
        timesteps: int = 1000,
        rescale: bool = True,
        eval_seed: int = 0,
        grid_steps: int = 50,
    ) -> None:
        self.sched = NoiseSchedule.make(schedule, timesteps)
        if grid_steps < 1:
            raise ConfigError(f"task.grid_steps: must be ≥ 1 (got {grid_steps})")
        self.schedule_name, self.timesteps = schedule, timesteps
        self.rescale, self.eval_seed = rescale, eval_seed
        self.grid_steps = min(grid_steps, timesteps)  # more than T steps: all T
        self.image_shape: tuple[int, ...] | None = None

    def check_data(self, data: object) -> None:
        """Images (C, H, W) only: a one-line error for tables, sequences or graphs."""
        shape = tuple(getattr(data, "input_shape", ()) or ())
        if len(shape) != 3:
            raise ConfigError(
                f"task diffusion: needs image data (C, H, W), but data "
                f"'{getattr(data, 'name', type(data).__name__)}' gives inputs of shape {shape}"
            )
        self.image_shape = shape

    def _x0(self, x: torch.Tensor) -> torch.Tensor:
        return to_unit_range(x) * 2 - 1 if self.rescale else x.float()  # [-1, 1]

    def _loss(
        self, model: nn.Module, x0: torch.Tensor, gen: torch.Generator | None
    ) -> torch.Tensor:
        check_denoiser(model)
        n = len(x0)
        t = torch.randint(0, self.timesteps, (n,), device=x0.device, generator=gen)
        noise = torch.randn(x0.shape, device=x0.device, generator=gen)
        eps = model(self.sched.q_sample(x0, t, noise), t)
        if eps.shape != x0.shape:
            raise ConfigError(
                f"task diffusion: the model's output {tuple(eps.shape)} is not the shape of its "
                f"input {tuple(x0.shape)}; a noise predictor returns ε̂ like x_t (ddpm_unet)"
            )
        return F.mse_loss(eps.float(), noise)

    def train_step(self, model: nn.Module, batch: Batch) -> StepOutput:
        return StepOutput(self._loss(model, self._x0(batch[0]), None))

    def eval_step(self, model: nn.Module, batch: Batch) -> StepOutput:
        x0 = self._x0(batch[0])
        # The same t and ε for every epoch, from a private RNG (the training stream is untouched).
        gen = torch.Generator(device=x0.device).manual_seed(self.eval_seed)
        return StepOutput(self._loss(model, x0, gen))

    def metrics(self, num_classes: int | None) -> MetricCollection:
        from torchmetrics import MetricCollection

        return MetricCollection({})  # val/loss (the ε-MSE) is the figure; FD: trainlab gen-score

    def sample_images(self, model: nn.Module, n: int, generator: torch.Generator) -> torch.Tensor:
        """``n`` images in [0, 1] (DDIM, ``grid_steps`` steps, η = 0), for sample grids; the
        image shape is the data's (seen by ``check_data``), else the model's own."""
        net = check_denoiser(model)
        device = next(net.parameters()).device
        shape = self.image_shape or (int(net.in_channels), int(net.image_size), int(net.image_size))
        x = sample(net, self.sched, n, shape, sampler="ddim", steps=self.grid_steps,
                   generator=generator, device=device)  # fmt: skip
        return (x + 1) / 2


@register_task("diffusion")
def diffusion(
    *,
    schedule: Schedule = "cosine",
    timesteps: int = 1000,
    rescale: bool = True,
    eval_seed: int = 0,
    grid_steps: int = 50,
) -> DiffusionTask:
    """DDPM: ε-prediction MSE at t ~ U{0…timesteps−1}, noise ``schedule`` linear or cosine;
    ``grid_steps``: DDIM steps of the sample grids drawn during training."""
    return DiffusionTask(schedule, timesteps, rescale, eval_seed, grid_steps)
