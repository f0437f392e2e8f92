"""BLEU (Papineni et al., 2002) on token-id tensors, through torchmetrics' BLEUScore.

Imported lazily by the seq2seq task's metrics: torchmetrics is slow to import.
"""

from __future__ import annotations

import torch
from torchmetrics.text import BLEUScore

__all__ = ["TokenBLEU"]


class TokenBLEU(BLEUScore):
    """torchmetrics' BLEU on token-id tensors: each (T,) row becomes a sentence of its ids,
    padding (and everything after ``eos_idx``) removed, one reference per prediction.

    >>> m = TokenBLEU(pad_idx=0, n_gram=2)
    >>> float(m(torch.tensor([[3, 4, 5, 0]]), torch.tensor([[3, 4, 5, 0]])))
    1.0
    """

    def __init__(self, pad_idx: int = 0, eos_idx: int | None = None, n_gram: int = 4) -> None:
        super().__init__(n_gram=n_gram)
        self.pad_idx, self.eos_idx = pad_idx, eos_idx

    def _sentences(self, ids: torch.Tensor) -> list[str]:
        out = []
        for row in ids.tolist():
            if self.eos_idx is not None and self.eos_idx in row:
                row = row[: row.index(self.eos_idx)]
            out.append(" ".join(str(t) for t in row if t != self.pad_idx))
        return out

    def update(self, preds: torch.Tensor, target: torch.Tensor) -> None:  # type: ignore[override]
        super().update(self._sentences(preds), [[s] for s in self._sentences(target)])
