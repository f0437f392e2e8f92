"""Device-side running sums of training figures, read with one host sync when logged."""

from __future__ import annotations

import torch

from trainlab.tasks.base import StepOutput

__all__ = ["RunningSums"]


class RunningSums:
    """Sums of loss, correct predictions and task extras over a window of steps.

    ``add`` only queues device ops; ``read`` converts to floats (the sync) and is called every
    ``log_every`` steps and at epoch ends.
    """

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.reset()

    def reset(self, start: int = 0) -> None:
        self.start = start  # first optimizer step the window covers (for messages)
        self.loss = torch.zeros((), device=self.device)
        self.correct = torch.zeros((), device=self.device)
        self.extras: dict[str, torch.Tensor] = {}
        self.steps = 0  # batches added (micro-batches under accumulation)
        self.labelled = 0  # samples that counted towards accuracy
        # Index (in batches added) of the first non-finite loss, -1 while none: kept on the
        # device, read only once the window's sum is known to be non-finite.
        self.first_bad = torch.full((), -1, dtype=torch.long, device=self.device)

    def add(self, out: StepOutput, y: torch.Tensor) -> None:
        loss = out.loss.detach().float()
        self.loss += loss
        fresh = (self.first_bad < 0) & ~torch.isfinite(loss)
        self.first_bad = torch.where(fresh, self.steps, self.first_bad)
        self.steps += 1
        if out.preds is not None and out.preds.dim() == 2 and y.dim() == 1:
            self.correct += (out.preds.argmax(dim=1) == y).sum()
            self.labelled += len(y)
        for k, v in (out.extras or {}).items():
            self.extras[k] = self.extras.get(k, 0) + v.detach().float()

    def first_bad_batch(self) -> int | None:
        """Batches added before the first non-finite loss (a host sync), or None."""
        i = int(self.first_bad)
        return i if i >= 0 else None

    def merge(self, other: RunningSums) -> None:
        self.loss += other.loss
        self.correct += other.correct
        self.steps += other.steps
        self.labelled += other.labelled
        for k, v in other.extras.items():
            self.extras[k] = self.extras.get(k, 0) + v

    def read(self, suffix: str = "") -> dict[str, float]:
        """``{"train/loss<suffix>": mean, "train/acc<suffix>": …, "train/<extra><suffix>": …}``."""
        if not self.steps:
            return {}
        out = {f"train/loss{suffix}": float(self.loss) / self.steps}
        if self.labelled:
            out[f"train/acc{suffix}"] = float(self.correct) / self.labelled
        for k, v in self.extras.items():
            out[f"train/{k}{suffix}"] = float(v) / self.steps
        return out
