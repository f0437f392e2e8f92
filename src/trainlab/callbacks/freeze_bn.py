"""``train.freeze_bn``: batch norms kept in eval mode while the rest of the model trains.

Fine-tuning a pre-trained backbone on a few labelled images, the batch statistics of small
batches from a new dataset would overwrite the running statistics the backbone's weights were
trained with. In eval mode a batch norm normalises with its stored statistics and leaves them
unchanged (its scale and shift still train unless frozen by ``optim.freeze``).

>>> # optim: {freeze: [features.]}   train: {freeze_bn: true}
"""

from __future__ import annotations

from typing import Any

from torch import nn

__all__ = ["FreezeBatchNorm", "frozen_norms"]


def frozen_norms(model: nn.Module, prefixes: tuple[str, ...]) -> list[nn.Module]:
    """The batch-norm layers under one of ``prefixes`` (parameter-name prefixes as in
    ``optim.freeze``: ``features.`` or ``net.2.``; "" matches all)."""
    norm = nn.modules.batchnorm._BatchNorm
    return [m for n, m in model.named_modules()
            if isinstance(m, norm) and f"{n}.".startswith(prefixes)]  # fmt: skip


class FreezeBatchNorm:
    """Puts the batch norms under ``prefixes`` in eval mode at every epoch start, right after
    the trainer has put the model in train mode."""

    def __init__(self, prefixes: list[str] | tuple[str, ...]) -> None:
        self.prefixes = tuple(prefixes)
        self.norms: list[nn.Module] = []

    def on_fit_start(self, state: Any) -> None:
        self.norms = frozen_norms(state.model, self.prefixes)

    def on_epoch_start(self, state: Any) -> None:
        for m in self.norms:
            m.eval()
