"""TrainState: everything the loop knows, shared with callbacks."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

__all__ = ["TrainState"]


@dataclass
class TrainState:
    """The loop's position and objects. Callbacks read it and may set ``should_stop``.

    ``epoch`` counts finished epochs; ``batch`` counts batches finished in the current epoch
    (0 at an epoch boundary); ``step`` counts optimizer steps since the start of training.
    ``metrics`` holds the latest value of every logged key (``train/loss``, ``val/acc`` …).
    """

    model: nn.Module
    optimizer: torch.optim.Optimizer
    schedule: Any = None
    scaler: Any = None
    ema: Any = None  # torch.optim.swa_utils.AveragedModel when train.ema_decay is set
    task: Any = None  # the task object (its state_dict, if any, goes into checkpoints)
    max_epochs: int = 1
    steps_per_epoch: int = 0
    epoch: int = 0
    batch: int = 0
    step: int = 0
    should_stop: bool = False
    stop_reason: str = ""
    metrics: dict[str, Any] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    run_dir: Path | None = None
    samples_per_s: float = 0.0
    skipped: int = 0  # batches skipped for a non-finite loss (train.nan_policy=skip)
    diverged: bool = False  # a non-finite loss stopped training (nan_policy stop or rollback)
    rollbacks: int = 0  # returns to the last good checkpoint after a non-finite loss
    data: Any = None  # the DataModule being trained on (train.swa recomputes BN statistics)
    # Set by a callback whose weights are the run's result (train.swa): the checkpoint saved
    # at this epoch end becomes best whatever the monitored value.
    take_as_best: bool = False

    @property
    def lr(self) -> float:
        return float(self.optimizer.param_groups[0]["lr"])
