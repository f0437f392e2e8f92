"""``translation_grid``: a callback that saves CycleGAN translations every N epochs.

Each PNG holds four rows over the same held-out images (the first ``task.preview`` pairs of
the validation split): the source ``a``, its translation ``G(a)``, the round trip
``F(G(a))`` and the true translation ``T(a)``, which training never saw. The weights, the RNG
and the train/eval mode are left as they were.

Recipe use (default folder: ``<run dir>/samples``)::

    callbacks:
      - {name: translation_grid, every: 1}
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import torch

from trainlab.callbacks.base import register_callback
from trainlab.errors import ConfigError
from trainlab.tasks.common import bare_model
from trainlab.tasks.sample_grid import GridFolder

if TYPE_CHECKING:
    from trainlab.train.state import TrainState

__all__ = ["TranslationGrid", "translation_grid"]


class TranslationGrid(GridFolder):
    """Writes ``<dir>/epoch-0001.png`` …: rows a, G(a), F(G(a)), T(a).

    >>> from trainlab import train_run                                         # doctest: +SKIP
    >>> train_run("recipes/cyclegan_fashion_mnist.yaml", extra_callbacks=[TranslationGrid()])
    ... # doctest: +SKIP
    """

    name = "translation_grid"

    def __init__(self, dir: str | Path | None = None, *, every: int = 1) -> None:
        if every < 1:
            raise ConfigError(f"translation_grid: every must be ≥ 1 (got {every})")
        self.dir = Path(dir) if dir is not None else None
        self.every = every
        self.written: list[Path] = []
        self._warned = False

    def on_epoch_end(self, state: TrainState) -> None:
        from trainlab.train.distributed import is_main

        grid_of = getattr(state.task, "translation_grid", None)
        folder = self._folder(state)
        if folder is None or not callable(grid_of) or state.epoch % self.every or not is_main():
            return
        model = bare_model(state.model)
        was_training = model.training
        model.eval()
        try:
            rows = grid_of(model)
        finally:
            model.train(was_training)
        if rows is None:
            return
        from torchvision.utils import save_image

        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"epoch-{state.epoch:04d}.png"
        n = len(rows) // 4  # four rows of n images
        rows = torch.nn.functional.interpolate(rows, scale_factor=2, mode="nearest")
        save_image(rows, path, nrow=n, padding=2, pad_value=0.5)
        self.written.append(path)


@register_callback("translation_grid")
def translation_grid(*, dir: str | None = None, every: int = 1) -> TranslationGrid:
    """Save CycleGAN translations (rows a, G(a), F(G(a)), T(a)) every ``every`` epochs into
    ``dir`` (default ``<run dir>/samples``)."""
    return TranslationGrid(dir, every=every)
