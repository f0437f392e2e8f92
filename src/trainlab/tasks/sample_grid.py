"""``sample_grid``: a callback that saves an image grid of generated samples every N epochs.

For generative models with a latent space: ``gan``/``dcgan`` (``model.generator(z)``, tanh
output) and ``vae``/``conv_vae`` (``model.decode(z)``, sigmoid output); and for tasks with a
``sample_images(model, n, generator)`` method (``diffusion``: DDIM from noise). The latent codes are
the same every epoch (drawn once from a private, seeded RNG), so the grids show one set of
samples evolving; the training RNG, the weights and the train/eval mode are left as they were,
so a run with the callback ends with the same weights as one without.

Recipe use (``dir``, relative to the working directory, is optional: by default the grids go
to the run directory's ``samples/`` folder)::

    callbacks:
      - {name: sample_grid, every: 1, n: 64}   # <run dir>/samples/epoch-NNNN.png
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import nn

from trainlab.callbacks.base import register_callback
from trainlab.errors import ConfigError
from trainlab.tasks.common import bare_model

if TYPE_CHECKING:  # the train package imports the tasks: keep the import graph one-way
    from trainlab.train.state import TrainState

__all__ = ["GridFolder", "SampleGrid", "sample_grid", "decode_latents"]


def decode_latents(model: nn.Module, z: torch.Tensor) -> torch.Tensor | None:
    """Images in [0, 1] (N, C, H, W) from codes ``z`` (N, latent), or None if the model has no
    generator/decoder."""
    if hasattr(model, "generator"):
        return (model.generator(z).float() + 1) / 2  # tanh range [-1, 1] → [0, 1]
    if callable(getattr(model, "decode", None)):
        return model.decode(z).float()  # sigmoid decoders are in [0, 1] already
    return None


class GridFolder:
    """Base of the callbacks that save image grids: where they go. ``self.dir`` when given,
    else ``<state.run_dir>/samples``; with neither, one warning and no grids."""

    name = "grid"  # the callback's registry name, for the warning
    dir: Path | None = None
    _warned = False

    def _folder(self, state: TrainState) -> Path | None:
        if self.dir is not None:
            return self.dir
        if state.run_dir is not None:
            return Path(state.run_dir) / "samples"
        if not self._warned:
            warnings.warn(
                f"{self.name}: no dir given and no run directory known; no grids saved",
                stacklevel=2,
            )
            self._warned = True
        return None


class SampleGrid(GridFolder):
    """Writes ``<dir>/epoch-0001.png`` … with ``n`` samples in a square-ish grid.

    ``dir`` None: ``<state.run_dir>/samples`` when the trainer records a run directory; without
    either, the callback warns once and writes nothing.

    >>> from trainlab import train_run                                     # doctest: +SKIP
    >>> train_run("recipes/gan_digits.yaml", extra_callbacks=[SampleGrid("g")])  # doctest: +SKIP
    """

    name = "sample_grid"

    def __init__(
        self, dir: str | Path | None = None, *, every: int = 1, n: int = 64, seed: int = 0
    ) -> None:
        if every < 1 or n < 1:
            raise ConfigError(f"sample_grid: every and n must be ≥ 1 (got {every}, {n})")
        self.dir = Path(dir) if dir is not None else None
        self.every, self.n, self.seed = every, n, seed
        self._warned = False
        self.written: list[Path] = []

    @torch.no_grad()
    def on_epoch_end(self, state: TrainState) -> None:
        from trainlab.train.distributed import is_main

        folder = self._folder(state)
        if folder is None or state.epoch % self.every or not is_main():
            return
        model = bare_model(state.model)
        latent = getattr(model, "latent_dim", None)
        task = getattr(state, "task", None)
        if latent is None and not callable(getattr(task, "sample_images", None)):
            return
        device = next(model.parameters()).device
        gen = torch.Generator().manual_seed(self.seed)
        was_training = model.training
        model.eval()  # batch norm on running statistics: samples do not depend on each other
        try:
            if latent is not None:
                z = torch.randn(self.n, int(latent), generator=gen)
                images = decode_latents(model, z.to(device))
            else:  # a task that samples itself (diffusion: from noise, with the EMA weights)
                net = bare_model(state.ema.module) if state.ema is not None else model
                images = task.sample_images(net, self.n, gen)  # type: ignore[union-attr]
        finally:
            model.train(was_training)
        if images is None:
            return
        from torchvision.utils import save_image

        # Small images (8×8 digits) are enlarged, pixel for pixel, to ≥ 32 px for viewing.
        factor = max(1, 32 // images.shape[-1])
        if factor > 1:
            images = torch.nn.functional.interpolate(images, scale_factor=factor, mode="nearest")
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"epoch-{state.epoch:04d}.png"
        save_image(images.clamp(0, 1).cpu(), path, nrow=max(1, math.isqrt(self.n)), padding=1)
        self.written.append(path)


@register_callback("sample_grid")
def sample_grid(
    *, dir: str | None = None, every: int = 1, n: int = 64, seed: int = 0
) -> SampleGrid:
    """Save a grid of ``n`` generated images every ``every`` epochs into ``dir`` (GAN, VAE)."""
    return SampleGrid(dir, every=every, n=n, seed=seed)
