"""Checkpoints during training: the last one (every epoch, optionally every N steps) and the
best one by a monitored metric. Each save is atomic (see ``trainlab.train.checkpoint``)."""

from __future__ import annotations

import math
import shutil
from pathlib import Path
from typing import Any

import torch

from trainlab.train.checkpoint import (
    latest_checkpoint,
    prune_checkpoints,
    rng_state,
    save_checkpoint,
    write_pointer,
)
from trainlab.train.state import TrainState

__all__ = ["ModelCheckpoint", "callback_keys", "training_payload"]


def training_payload(state: TrainState, callbacks: list[Any]) -> dict[str, Any]:
    """Everything besides the weights that exact resume needs."""
    sched = state.schedule.scheduler.state_dict() if state.schedule is not None else None
    return {
        "position": {
            "epoch": state.epoch,
            "batch": state.batch,
            "step": state.step,
            "skipped": state.skipped,
        },
        "optimizer": state.optimizer.state_dict(),
        "scheduler": sched,
        "scaler": state.scaler.state_dict() if state.scaler is not None else None,
        "rng": rng_state(),
        "metrics": {k: v for k, v in state.metrics.items() if isinstance(v, (int, float))},
        "history": state.history,
        "task": _task_state(state.task),
        "callbacks": {
            key: cb.state_dict()
            for key, cb in callback_keys(callbacks)
            if callable(getattr(cb, "state_dict", None))
        },
    }


def callback_keys(callbacks: list[Any]) -> list[tuple[str, Any]]:
    """``("EarlyStopping:0", cb)``…: keys that survive callbacks present on one rank only."""
    seen: dict[str, int] = {}
    out = []
    for cb in callbacks:
        name = type(cb).__name__
        out.append((f"{name}:{seen.get(name, 0)}", cb))
        seen[name] = seen.get(name, 0) + 1
    return out


def _task_state(task: Any) -> Any:
    # Tasks with their own optimizer (a GAN's discriminator) resume exactly only with it.
    return task.state_dict() if callable(getattr(task, "state_dict", None)) else None


class ModelCheckpoint:
    """Saves ``checkpoints/step-N`` at every epoch end (and every ``every_steps`` steps), keeps
    the newest ``keep`` plus the best by ``monitor``. With ``save_initial`` it also saves the
    starting point (``step-0``) of a run that has no checkpoint yet: something to roll back to
    before the first epoch ends (``train.nan_policy: rollback``)."""

    def __init__(
        self,
        ckpt_dir: Path,
        *,
        monitor: str = "val/acc",
        mode: str = "max",
        every_steps: int | None = None,
        keep: int = 2,
        callbacks: list[Any] | None = None,
        save_initial: bool = False,
    ) -> None:
        self.dir, self.monitor, self.mode = Path(ckpt_dir), monitor, mode
        self.save_initial = save_initial
        self.every_steps, self.keep = every_steps, keep
        self.callbacks = callbacks if callbacks is not None else []
        self.best = -math.inf if mode == "max" else math.inf
        self.best_epoch: int | None = None
        self.last_saved_step: int | None = None

    def save(self, state: TrainState) -> Path | None:
        """Save a checkpoint, unless the weights are no longer finite: a NaN never replaces a
        good checkpoint."""
        if state.diverged or not all(
            bool(torch.isfinite(p).all()) for p in state.model.parameters()
        ):
            return None
        path = save_checkpoint(
            self.dir,
            f"step-{state.step:08d}",
            state.model,
            training_payload(state, self.callbacks),
            ema=state.ema,
        )
        prune_checkpoints(self.dir, self.keep)
        self.last_saved_step = state.step
        return path

    def on_fit_start(self, state: TrainState) -> None:
        # A process killed mid-save leaves a .tmp-* folder; it never became a checkpoint.
        for stale in self.dir.glob(".tmp-*") if self.dir.is_dir() else []:
            shutil.rmtree(stale, ignore_errors=True)
        if self.save_initial and (not self.dir.is_dir() or latest_checkpoint(self.dir) is None):
            self.save(state)

    def on_batch_end(self, state: TrainState) -> None:
        if self.every_steps and state.step % self.every_steps == 0:
            self.save(state)

    def on_epoch_end(self, state: TrainState) -> None:
        value = state.metrics.get(self.monitor)
        better = value is not None and (
            value > self.best if self.mode == "max" else value < self.best
        )
        if state.take_as_best:  # the run's result (train.swa's averaged weights)
            better, state.take_as_best = True, False
        if better:
            # Record the new best first, so the saved payload carries it.
            self.best = float(value) if value is not None else self.best
            self.best_epoch = state.epoch
        path = self.save(state)
        if better and path is not None:
            write_pointer(self.dir, "best", path.name)

    def on_fit_end(self, state: TrainState) -> None:
        # A run stopped between epoch ends (max_steps, a signal) keeps its exact position.
        if self.last_saved_step != state.step:
            self.save(state)

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, "best_epoch": self.best_epoch}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best, self.best_epoch = float(state["best"]), state["best_epoch"]
