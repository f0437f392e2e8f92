"""``keep_zeros``: weights that are zero when training starts stay zero (re-masked after every
optimizer step). ``trainlab prune`` puts it in the recipe of each fine-tuning run of an
unstructured-pruned model, so the sparsity survives training, a resume and a re-run of the
run's ``config.yaml``.

>>> # callbacks: [{name: keep_zeros}]
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from trainlab.callbacks.base import register_callback

__all__ = ["KeepZeros", "PRUNABLE"]

PRUNABLE = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)


@register_callback("keep_zeros")
class KeepZeros:
    """Re-mask conv/linear weights to their zero pattern at fit start, after every step."""

    def __init__(self) -> None:
        self.masks: list[tuple[torch.Tensor, torch.Tensor]] = []

    def on_fit_start(self, state: Any) -> None:
        self.masks = [(m.weight, m.weight != 0) for m in state.model.modules()
                      if isinstance(m, PRUNABLE)]  # fmt: skip

    def on_batch_end(self, state: Any) -> None:
        with torch.no_grad():
            for w, mask in self.masks:
                w.mul_(mask)
