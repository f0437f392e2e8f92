"""Stop training when a monitored metric stops improving."""

from __future__ import annotations

import math
from typing import Any

from trainlab.callbacks.base import register_callback
from trainlab.errors import ConfigError
from trainlab.train.state import TrainState

__all__ = ["EarlyStopping"]


@register_callback("early_stopping")
class EarlyStopping:
    """Sets ``state.should_stop`` after ``patience`` validations without an improvement larger
    than ``min_delta`` in ``monitor`` (``mode`` max or min).

    >>> es = EarlyStopping(monitor="val/acc", patience=3)
    """

    def __init__(
        self,
        *,
        monitor: str = "val/loss",
        mode: str = "auto",
        patience: int = 5,
        min_delta: float = 0.0,
    ) -> None:
        if mode == "auto":
            mode = "min" if monitor.endswith("loss") else "max"
        if mode not in ("min", "max"):
            raise ConfigError(f"callbacks.early_stopping.mode: '{mode}'; valid: auto, max, min")
        self.monitor, self.mode, self.patience, self.min_delta = monitor, mode, patience, min_delta
        self.best = math.inf if mode == "min" else -math.inf
        self.bad_epochs = 0

    def improved(self, value: float) -> bool:
        if self.mode == "min":
            return value < self.best - self.min_delta
        return value > self.best + self.min_delta

    def on_validation_end(self, state: TrainState) -> None:
        if self.monitor not in state.metrics:
            known = ", ".join(sorted(k for k in state.metrics if k.startswith("val/")))
            raise ConfigError(
                f"callbacks.early_stopping.monitor: no metric '{self.monitor}'; logged: {known}"
            )
        value = float(state.metrics[self.monitor])
        if self.improved(value):
            self.best, self.bad_epochs = value, 0
            return
        self.bad_epochs += 1
        if self.bad_epochs >= self.patience:
            state.should_stop = True
            state.stop_reason = (
                f"early stopping: {self.monitor} did not improve for {self.patience} epochs "
                f"(best {self.best:.4g})"
            )

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, "bad_epochs": self.bad_epochs}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best, self.bad_epochs = float(state["best"]), int(state["bad_epochs"])
