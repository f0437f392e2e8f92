"""Noise schedules and samplers of denoising diffusion (DDPM, DDIM).

Forward process (Ho et al., 2020): ``q(x_t | x_0) = N(√ᾱ_t · x_0, (1 − ᾱ_t) · I)`` with
``ᾱ_t = Π_{s ≤ t} (1 − β_s)``, steps t = 0 … T−1. Two schedules of β:

- ``linear``: β from 1e-4 to 0.02 over T = 1000 steps (DDPM), both ends scaled by 1000/T for
  other T (Nichol & Dhariwal, 2021, so that ᾱ_{T−1} stays near 0);
- ``cosine``: ``ᾱ(t) = f(t)/f(0)``, ``f(t) = cos²(((t/T) + s)/(1 + s) · π/2)``, s = 0.008,
  with β clipped at 0.999 (Nichol & Dhariwal, 2021, eq. 17): noise is added more evenly, so
  fewer steps are spent on images already destroyed.

Samplers, both from x_T ~ N(0, I), with the model's noise estimate ε̂ and x̂_0 clipped to
[−1, 1] (the data range) at every step:

- :func:`ddpm_sample`: ancestral sampling, T steps: ``x_{t−1} ~ q(x_{t−1} | x_t, x̂_0)``
  (posterior mean, posterior variance β̃_t);
- :func:`ddim_sample`: DDIM (Song et al., 2021) over an evenly spaced subsequence of ``steps``
  steps; ``eta`` = 0 is deterministic given x_T, ``eta`` = 1 with all T steps is ancestral DDPM.

>>> s = NoiseSchedule.make("cosine", 100)
>>> bool((s.alpha_bar[1:] < s.alpha_bar[:-1]).all()), s.betas.shape
(True, torch.Size([100]))
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from trainlab.errors import ConfigError

__all__ = ["NoiseSchedule", "SCHEDULES", "SAMPLERS", "ddpm_sample", "ddim_sample", "sample"]

SCHEDULES = ("linear", "cosine")
SAMPLERS = ("ddpm", "ddim")


@dataclass(frozen=True)
class NoiseSchedule:
    """β_t and ᾱ_t for t = 0 … T−1, float64 on the CPU (moved per use)."""

    betas: torch.Tensor  # (T,)
    alpha_bar: torch.Tensor  # (T,) = cumprod(1 − β)

    @staticmethod
    def make(kind: str, timesteps: int) -> NoiseSchedule:
        """The ``linear`` or ``cosine`` schedule with ``timesteps`` steps."""
        if kind not in SCHEDULES:
            raise ConfigError(f"task.schedule: '{kind}' is not a schedule; valid: linear, cosine")
        if timesteps < 2:
            raise ConfigError(f"task.timesteps: at least 2 needed (got {timesteps})")
        if kind == "linear":
            scale = 1000 / timesteps
            betas = torch.linspace(1e-4 * scale, 0.02 * scale, timesteps, dtype=torch.float64)
            betas = betas.clamp(max=0.999)  # T < 50: the scaled end would reach β = 1
        else:
            s = 0.008
            x = torch.arange(timesteps + 1, dtype=torch.float64) / timesteps
            f = torch.cos((x + s) / (1 + s) * math.pi / 2) ** 2
            betas = (1 - f[1:] / f[:-1]).clamp(max=0.999)
        return NoiseSchedule(betas, torch.cumprod(1 - betas, 0))

    @property
    def timesteps(self) -> int:
        return len(self.betas)

    def at(self, values: torch.Tensor, t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        """``values[t]`` shaped (N, 1, 1, …) to broadcast against ``like``, in float32."""
        out = values.to(like.device)[t].float()
        return out.view(-1, *([1] * (like.dim() - 1)))

    def q_sample(self, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """x_t = √ᾱ_t · x_0 + √(1 − ᾱ_t) · ε: a draw from q(x_t | x_0) for each sample.

        >>> s = NoiseSchedule.make("linear", 1000)
        >>> x0 = torch.ones(2, 1, 2, 2)
        >>> s.q_sample(x0, torch.tensor([0, 999]), torch.zeros_like(x0))[:, 0, 0, 0]
        tensor([0.9999, 0.0064])
        """
        ab = self.at(self.alpha_bar, t, x0)
        return ab.sqrt() * x0 + (1 - ab).sqrt() * noise


Denoiser = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def _x0_and_eps(
    model: Denoiser, x: torch.Tensor, t: int, ab: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """The model's ε̂ at step t, x̂_0 clipped to [−1, 1], and ε̂ made consistent with it."""
    tt = torch.full((len(x),), t, device=x.device, dtype=torch.long)
    eps = model(x, tt).float()
    x0 = ((x - math.sqrt(1 - ab) * eps) / math.sqrt(ab)).clamp(-1, 1)
    eps = (x - math.sqrt(ab) * x0) / math.sqrt(1 - ab)
    return x0, eps


def _noise(x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    # Drawn on the generator's device (a CPU generator may drive sampling on a GPU).
    where = generator.device if generator is not None else x.device
    return torch.randn(x.shape, generator=generator, device=where).to(x.device, x.dtype)


@torch.no_grad()
def ddpm_sample(
    model: Denoiser, sched: NoiseSchedule, x_t: torch.Tensor, generator: torch.Generator | None
) -> torch.Tensor:
    """Ancestral sampling through all T steps, from ``x_t`` = x_T (N, C, H, W) → x_0.

    ``x_{t−1} = μ̃_t(x_t, x̂_0) + √β̃_t · z``, ``μ̃_t = (β_t √ᾱ_{t−1} x̂_0 + (1 − ᾱ_{t−1}) √α_t x_t)
    / (1 − ᾱ_t)``, ``β̃_t = β_t (1 − ᾱ_{t−1}) / (1 − ᾱ_t)`` (Ho et al., 2020, eqs. 6–7); no noise
    on the last step.
    """
    betas, ab = sched.betas.tolist(), sched.alpha_bar.tolist()
    x = x_t.float()
    for t in reversed(range(sched.timesteps)):
        ab_prev = ab[t - 1] if t > 0 else 1.0
        x0, _ = _x0_and_eps(model, x, t, ab[t])
        c0 = betas[t] * math.sqrt(ab_prev) / (1 - ab[t])
        ct = (1 - ab_prev) * math.sqrt(1 - betas[t]) / (1 - ab[t])
        x = c0 * x0 + ct * x
        if t > 0:
            var = betas[t] * (1 - ab_prev) / (1 - ab[t])
            x = x + math.sqrt(var) * _noise(x, generator)
    return x


def ddim_steps(timesteps: int, steps: int) -> list[int]:
    """``steps`` evenly spaced steps from 0 to T−1, both ends included, increasing.

    >>> ddim_steps(1000, 5)
    [0, 250, 500, 749, 999]
    """
    if not 1 <= steps <= timesteps:
        raise ConfigError(f"sample: steps must lie in 1 … {timesteps} (got {steps})")
    if steps == 1:
        return [timesteps - 1]
    return sorted({round(i * (timesteps - 1) / (steps - 1)) for i in range(steps)})


@torch.no_grad()
def ddim_sample(
    model: Denoiser,
    sched: NoiseSchedule,
    x_t: torch.Tensor,
    generator: torch.Generator | None,
    steps: int = 50,
    eta: float = 0.0,
) -> torch.Tensor:
    """DDIM from x_T over ``steps`` steps (Song et al., 2021, eq. 12):

    ``x_prev = √ᾱ_prev · x̂_0 + √(1 − ᾱ_prev − σ²) · ε̂ + σ · z``, with
    ``σ = η · √((1 − ᾱ_prev)/(1 − ᾱ_t)) · √(1 − ᾱ_t/ᾱ_prev)``.
    """
    if eta < 0:
        raise ConfigError(f"sample: eta must be ≥ 0 (got {eta})")
    ab = sched.alpha_bar.tolist()
    seq = ddim_steps(sched.timesteps, steps)
    x = x_t.float()
    for i in reversed(range(len(seq))):
        t = seq[i]
        ab_prev = ab[seq[i - 1]] if i > 0 else 1.0
        x0, eps = _x0_and_eps(model, x, t, ab[t])
        sigma = eta * math.sqrt((1 - ab_prev) / (1 - ab[t]) * (1 - ab[t] / ab_prev))
        x = math.sqrt(ab_prev) * x0 + math.sqrt(max(1 - ab_prev - sigma**2, 0.0)) * eps
        if i > 0 and sigma > 0:
            x = x + sigma * _noise(x, generator)
    return x


@torch.no_grad()
def sample(
    model: nn.Module,
    sched: NoiseSchedule,
    n: int,
    shape: tuple[int, ...],
    *,
    sampler: str = "ddim",
    steps: int | None = None,
    eta: float = 0.0,
    generator: torch.Generator | None = None,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """``n`` images (n, *shape) in [−1, 1] from noise: ``ddpm`` (all T steps) or ``ddim``
    (``steps``, default 50). The model is put in eval mode for the call and restored.

    >>> from trainlab.models import create_model
    >>> net = create_model("ddpm_unet", base=8, mults=[1], attention=False)
    >>> sample(net, NoiseSchedule.make("cosine", 10), 2, (1, 8, 8), steps=3).shape
    torch.Size([2, 1, 8, 8])
    """
    if sampler not in SAMPLERS:
        raise ConfigError(f"sample: --sampler '{sampler}' is not a sampler; valid: ddpm, ddim")
    if sampler == "ddpm" and steps not in (None, sched.timesteps):
        raise ConfigError(
            f"sample: ddpm runs all {sched.timesteps} steps of the schedule (got --steps "
            f"{steps}); use --sampler ddim for fewer"
        )
    where = generator.device if generator is not None else device
    x_t = torch.randn((n, *shape), generator=generator, device=where).to(device)
    was_training = model.training
    model.eval()
    try:
        if sampler == "ddpm":
            x = ddpm_sample(model, sched, x_t, generator)
        else:
            x = ddim_sample(model, sched, x_t, generator, steps or 50, eta)
    finally:
        model.train(was_training)
    return x.clamp(-1, 1)
