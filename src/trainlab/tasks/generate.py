"""Images from a trained generator run: diffusion (DDPM / DDIM), GAN / DCGAN, VAE.

Used by ``trainlab sample RUN`` (a PNG grid) and ``trainlab gen-score`` (quality figures). The
model is rebuilt from the run's ``config.yaml`` with its best weights (EMA weights when the run
kept them), on the CPU unless ``device`` says otherwise; no data is loaded.

>>> images = generate_images("runs/ddpm", 64, sampler="ddim", steps=50)   # doctest: +SKIP
>>> images.shape, float(images.min()) >= 0                               # doctest: +SKIP
(torch.Size([64, 1, 28, 28]), True)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from trainlab.errors import ConfigError

__all__ = ["Generator", "load_generator", "generate_images", "save_grid", "is_image_generator"]

# Tasks whose runs generate images (text runs go through trainlab.tasks.sampling).
IMAGE_TASKS = ("diffusion", "gan", "vae", "adversarial_autoencoder")


def is_image_generator(run_dir: str | Path) -> bool:
    """Whether the run's task generates images (read from its ``config.yaml`` only)."""
    import yaml

    path = Path(run_dir) / "config.yaml"
    if not path.is_file():
        return False
    cfg = yaml.safe_load(path.read_text()) or {}
    return (cfg.get("task") or {}).get("name") in IMAGE_TASKS


@dataclass
class Generator:
    """A loaded generator run: its model and resolved config."""

    model: nn.Module
    cfg: Any

    @property
    def task(self) -> str:
        return str(self.cfg.task.name)


def load_generator(
    run_dir: str | Path, which: str = "best", device: str | torch.device = "cpu"
) -> Generator:
    """The run's model with its ``best`` (or ``latest``) weights, in eval mode on ``device``."""
    from trainlab.deploy.source import load_model_only

    model, cfg = load_model_only(run_dir, which)
    if cfg.task.name not in IMAGE_TASKS:
        raise ConfigError(
            f"{run_dir}: a '{cfg.task.name}' run does not generate images; give a run of task "
            f"{', '.join(IMAGE_TASKS)}"
        )
    return Generator(model.to(device), cfg)


def _diffusion_batch(
    gen: Generator, n: int, g: torch.Generator, sampler: str, steps: int | None, eta: float
) -> torch.Tensor:
    from trainlab.tasks.diffusion_schedule import NoiseSchedule, sample

    opts = gen.cfg.task.options()
    sched = NoiseSchedule.make(opts.get("schedule", "cosine"), int(opts.get("timesteps", 1000)))
    m = gen.model
    shape = (int(m.in_channels), int(m.image_size), int(m.image_size))
    device = next(m.parameters()).device
    x = sample(m, sched, n, shape, sampler=sampler, steps=steps, eta=eta, generator=g,
               device=device)  # fmt: skip
    return (x + 1) / 2


def _latent_batch(gen: Generator, n: int, g: torch.Generator) -> torch.Tensor:
    from trainlab.tasks.sample_grid import decode_latents

    m = gen.model
    latent = getattr(m, "latent_dim", None)
    if latent is None:
        raise ConfigError(f"model '{gen.cfg.model.name}' has no latent_dim to sample codes for")
    device = next(m.parameters()).device
    z = torch.randn(n, int(latent), generator=g).to(device)
    images = decode_latents(m, z)
    if images is None:
        raise ConfigError(f"model '{gen.cfg.model.name}' has no generator or decoder")
    return images


@torch.no_grad()
def generate_images(
    run: str | Path | Generator,
    n: int,
    *,
    seed: int = 0,
    sampler: str = "ddim",
    steps: int | None = None,
    eta: float = 0.0,
    batch: int = 500,
    precision: str = "fp32",
) -> torch.Tensor:
    """``n`` images (n, C, H, W) in [0, 1] on the CPU from a generator run.

    Diffusion runs sample with ``sampler`` (``ddpm``: all T steps; ``ddim``: ``steps``, default
    50, with ``eta``); latent models decode z ~ N(0, I). ``seed`` fixes every draw;
    ``precision`` ``bf16`` runs the network under bfloat16 autocast (the sampler's arithmetic
    stays float32).
    """
    if n < 1:
        raise ConfigError(f"sample: --n must be ≥ 1 (got {n})")
    if precision not in ("fp32", "bf16"):
        raise ConfigError(f"sample: --precision must be fp32 or bf16 (got {precision})")
    gen = run if isinstance(run, Generator) else load_generator(run)
    g = torch.Generator().manual_seed(seed)
    device = next(gen.model.parameters()).device
    out = []
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16"):
        for start in range(0, n, batch):
            k = min(batch, n - start)
            if gen.task == "diffusion":
                out.append(_diffusion_batch(gen, k, g, sampler, steps, eta))
            else:
                out.append(_latent_batch(gen, k, g))
    return torch.cat(out).float().clamp(0, 1).cpu()


def save_grid(images: torch.Tensor, path: str | Path) -> Path:
    """Write images (N, C, H, W) in [0, 1] as a square-ish PNG grid; small images are enlarged
    pixel for pixel to ≥ 32 px."""
    from torchvision.utils import save_image

    factor = max(1, 32 // images.shape[-1])
    if factor > 1:
        images = torch.nn.functional.interpolate(images, scale_factor=factor, mode="nearest")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_image(images.clamp(0, 1), path, nrow=max(1, math.isqrt(len(images))), padding=1)
    return path
