"""A rich progress bar per epoch and one printed line of figures per epoch."""

from __future__ import annotations

import time
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from trainlab.train.state import TrainState

__all__ = ["ProgressBar"]


class ProgressBar:
    """Shows batches done in the epoch with the latest train loss; after validation prints
    ``epoch 3/8  train 0.512  val 0.331  acc 0.9021  12,345 samples/s  17.2s``.

    ``bar=False`` (``trainlab train --no-progress``) prints only those per-epoch lines and the
    stop reason: logs stay readable without the bar's redraws.
    """

    def __init__(self, console: Console | None = None, bar: bool = True) -> None:
        self.console = console or Console(stderr=True)
        self.bar = bar
        self.progress: Progress | None = None
        self.task_id: Any = None
        self.t_epoch = 0.0

    def on_fit_start(self, state: TrainState) -> None:
        if not self.bar:
            return
        self.progress = Progress(
            TextColumn("[bold]epoch {task.fields[epoch]}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=self.console,
            transient=True,
            refresh_per_second=4,
        )
        self.progress.start()

    def on_epoch_start(self, state: TrainState) -> None:
        self.t_epoch = time.perf_counter()
        if self.progress is None:
            return
        if self.task_id is not None:
            self.progress.remove_task(self.task_id)
        self.task_id = self.progress.add_task(
            "train",
            total=state.steps_per_epoch,
            completed=state.batch,
            epoch=f"{state.epoch + 1}/{state.max_epochs}",
            loss="…",
        )

    def on_batch_end(self, state: TrainState) -> None:
        if self.progress is not None:
            self.progress.update(self.task_id, completed=state.batch)

    def on_log(self, state: TrainState, record: dict[str, Any]) -> None:
        if self.progress is not None and self.task_id is not None and "train/loss" in record:
            self.progress.update(self.task_id, loss=f"{record['train/loss']:.4f}")

    def on_validation_end(self, state: TrainState) -> None:
        m = state.metrics
        parts = [f"epoch {state.epoch}/{state.max_epochs}"]
        for key, label in (
            ("train/loss_epoch", "loss"),
            ("val/loss", "val_loss"),
            ("val/acc", "val_acc"),
        ):
            if key in m:
                parts.append(f"{label} {m[key]:.4f}")
        parts.append(f"{state.samples_per_s:,.0f}/s")
        parts.append(f"{time.perf_counter() - self.t_epoch:.1f}s")
        self.console.print("  ".join(parts))

    def on_fit_end(self, state: TrainState) -> None:
        self._close()
        if state.stop_reason:
            self.console.print(f"stopped: {state.stop_reason}")

    def on_exception(self, state: TrainState, exc: BaseException) -> None:
        self._close()

    def _close(self) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None
