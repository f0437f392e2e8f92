"""The one training loop.

Read :meth:`Trainer.fit` top to bottom: it is the whole of training. Objectives plug in as tasks
(``task.train_step`` returns the loss), everything else plugs in as callbacks on named events
(see ``trainlab.train.events``). The hot path does no host synchronisation: losses accumulate on
the device and are read every ``log_every`` steps.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from trainlab.data.base import DataModule, Loader
from trainlab.tasks.base import Task
from trainlab.train.events import EVENTS
from trainlab.train.precision import (
    autocast,
    resolve_device,
    resolve_precision,
    wants_channels_last,
)
from trainlab.train.state import TrainState

__all__ = ["Trainer"]


class Trainer:
    """Runs training and evaluation; options mirror the recipe's ``train`` section.

    >>> from trainlab import create_model, build_data, Trainer   # doctest: +SKIP
    >>> data = build_data("synthetic", num_classes=4)              # doctest: +SKIP
    >>> model = create_model("mlp", in_features=64, num_classes=4)  # doctest: +SKIP
    >>> opt = torch.optim.SGD(model.parameters(), lr=0.1)         # doctest: +SKIP
    >>> state = Trainer(epochs=3).fit(model, task, data, opt)      # doctest: +SKIP
    """

    def __init__(
        self,
        *,
        epochs: int = 10,
        device: str = "auto",
        precision: str = "auto",
        channels_last: bool | str = "auto",
        grad_clip: float | None = None,
        grad_clip_mode: str = "norm",
        log_every: int = 50,
        max_steps: int | None = None,
        callbacks: Sequence[Any] = (),
    ) -> None:
        self.epochs = epochs
        self.device = resolve_device(device)
        self.precision = resolve_precision(precision, self.device)
        self.channels_last_setting = channels_last
        self.channels_last = False
        self.grad_clip, self.grad_clip_mode = grad_clip, grad_clip_mode
        self.log_every, self.max_steps = log_every, max_steps
        self.callbacks = list(callbacks)
        self.autocast = autocast(self.precision, self.device)

    # -- events ------------------------------------------------------------------------------
    def emit(self, event: str, state: TrainState, *args: Any) -> None:
        for cb in self._handlers.get(event, ()):
            getattr(cb, event)(state, *args)

    def log(self, state: TrainState, values: dict[str, Any]) -> None:
        """Record metrics (keys ``split/name``) in ``state.metrics`` and send them to ``on_log``."""
        state.metrics.update(values)
        self.emit("on_log", state, {"step": state.step, "epoch": state.epoch, **values})

    def _bind(self) -> None:
        # Resolve handlers once: the hot path iterates short lists, no getattr per step.
        self._handlers = {
            e: [cb for cb in self.callbacks if callable(getattr(cb, e, None))] for e in EVENTS
        }

    # -- the loop ------------------------------------------------------------------------------
    def prepare(self, model: nn.Module) -> nn.Module:
        """Move ``model`` to the device and memory format the loop will use."""
        self.channels_last = wants_channels_last(self.channels_last_setting, model, self.precision)
        model.to(self.device)
        if self.channels_last:
            model.to(memory_format=torch.channels_last)
        return model

    def fit(  # noqa: C901 - the one loop, read top to bottom (GUIDE: "The loop")
        self,
        model: nn.Module,
        task: Task,
        data: DataModule,
        optimizer: torch.optim.Optimizer,
        schedule: Any = None,
        state: TrainState | None = None,
    ) -> TrainState:
        """Train ``model`` for ``epochs`` epochs (or until a callback sets ``should_stop``).

        ``state``, when given, is a restored :class:`TrainState` (see ``trainlab.train.resume``):
        the loop continues at its epoch and batch.
        """
        self._bind()
        self.prepare(model)
        train_loader = data.loader("train")
        has_val = data.sizes.get("val", 0) > 0
        val_metrics = task.metrics(data.num_classes).to(self.device) if has_val else None
        if state is None:
            state = TrainState(model=model, optimizer=optimizer, schedule=schedule)
        state.max_epochs, state.steps_per_epoch = self.epochs, len(train_loader)
        scaler = torch.amp.GradScaler("cuda") if self.precision == "fp16" else None
        state.scaler = state.scaler or scaler
        step_sched = schedule is not None and schedule.interval == "step"
        zero = torch.zeros((), device=self.device)

        self.emit("on_fit_start", state)
        try:
            while state.epoch < self.epochs and not state.should_stop:
                self.emit("on_epoch_start", state)
                model.train()
                # Running sums on the device; read (one host sync) every log_every steps.
                win_loss, win_correct, win_n, win_steps = zero.clone(), zero.clone(), 0, 0
                ep_loss, ep_correct, ep_n, ep_steps = zero.clone(), zero.clone(), 0, 0
                t_epoch, n_epoch = time.perf_counter(), 0
                for x, y in train_loader.iter_epoch(state.epoch, start=state.batch):
                    if self.channels_last and x.dim() == 4:
                        x = x.contiguous(memory_format=torch.channels_last)
                    with self.autocast():
                        out = task.train_step(model, (x, y))  # out.loss: scalar
                    optimizer.zero_grad(set_to_none=True)
                    if state.scaler is not None:
                        state.scaler.scale(out.loss).backward()
                        state.scaler.unscale_(optimizer)  # clip true gradients, not scaled ones
                    else:
                        out.loss.backward()
                    self._clip(model)
                    if state.scaler is not None:
                        state.scaler.step(optimizer)
                        state.scaler.update()
                    else:
                        optimizer.step()
                    if step_sched:
                        schedule.scheduler.step()
                    state.step += 1
                    state.batch += 1

                    loss = out.loss.detach().float()
                    win_loss += loss
                    win_steps += 1
                    n = len(y)
                    n_epoch += n
                    if out.preds is not None and out.preds.dim() == 2 and y.dim() == 1:
                        win_correct += (out.preds.argmax(dim=1) == y).sum()
                        win_n += n
                    if state.step % self.log_every == 0:
                        self._log_train(state, win_loss, win_correct, win_n, win_steps)
                        ep_loss, ep_correct = ep_loss + win_loss, ep_correct + win_correct
                        ep_n, ep_steps = ep_n + win_n, ep_steps + win_steps
                        win_loss, win_correct, win_n, win_steps = zero.clone(), zero.clone(), 0, 0
                    self.emit("on_batch_end", state)
                    if self.max_steps is not None and state.step >= self.max_steps:
                        state.should_stop, state.stop_reason = True, f"max_steps={self.max_steps}"
                    if state.should_stop:
                        break

                # End of the epoch. A run stopped mid-epoch skips validation: its position
                # (epoch, batch) is saved by on_fit_end handlers and resumes exactly there.
                if state.batch < len(train_loader):
                    break
                elapsed = time.perf_counter() - t_epoch
                state.samples_per_s = n_epoch / elapsed if elapsed > 0 else 0.0
                ep_loss, ep_correct = ep_loss + win_loss, ep_correct + win_correct
                ep_n, ep_steps = ep_n + win_n, ep_steps + win_steps
                record: dict[str, Any] = {"train/samples_per_s": state.samples_per_s}
                if ep_steps:
                    record["train/loss_epoch"] = float(ep_loss) / ep_steps
                if ep_n:
                    record["train/acc_epoch"] = float(ep_correct) / ep_n
                record["lr"] = state.lr
                if val_metrics is not None:
                    record.update(
                        self.evaluate(model, task, data.loader("val"), "val", val_metrics)
                    )
                state.epoch += 1
                state.batch = 0
                self.log(state, record)
                if val_metrics is not None:
                    self.emit("on_validation_end", state)
                if schedule is not None and schedule.interval == "epoch":
                    schedule.scheduler.step(state.metrics[schedule.monitor])
                state.history.append({"epoch": state.epoch, **_scalars(record)})
                self.emit("on_epoch_end", state)
        except BaseException as exc:
            self.emit("on_exception", state, exc)
            raise
        self.emit("on_fit_end", state)
        return state

    def _clip(self, model: nn.Module) -> None:
        if self.grad_clip is None:
            return
        if self.grad_clip_mode == "norm":
            torch.nn.utils.clip_grad_norm_(model.parameters(), self.grad_clip)
        else:
            torch.nn.utils.clip_grad_value_(model.parameters(), self.grad_clip)

    def _log_train(
        self, state: TrainState, loss: torch.Tensor, correct: torch.Tensor, n: int, steps: int
    ) -> None:
        values = {"train/loss": float(loss) / steps, "lr": state.lr}  # float(): the host sync
        if n:
            values["train/acc"] = float(correct) / n
        self.log(state, values)

    # -- evaluation ------------------------------------------------------------------------------
    @torch.no_grad()
    def evaluate(
        self, model: nn.Module, task: Task, loader: Loader, split: str, metrics: Any
    ) -> dict[str, Any]:
        """Loss and task metrics over one split, as ``{f"{split}/{name}": value}``.

        Metrics stream through torchmetrics (no logits kept); per-class figures and the
        confusion matrix come back as lists.
        """
        was_training = model.training
        model.eval()
        metrics.reset()
        loss_sum = torch.zeros((), device=self.device)
        n = 0
        for x, y in loader.iter_epoch(0):
            if self.channels_last and x.dim() == 4:
                x = x.contiguous(memory_format=torch.channels_last)
            with self.autocast():
                out = task.eval_step(model, (x, y))
            loss_sum += out.loss.float() * len(y)  # mean loss per sample over the split
            n += len(y)
            if out.preds is not None:
                metrics.update(out.preds, out.target)
        model.train(was_training)
        result: dict[str, Any] = {f"{split}/loss": float(loss_sum) / max(n, 1)}
        for name, value in metrics.compute().items():
            result[f"{split}/{name}"] = value.item() if value.numel() == 1 else value.tolist()
        return result


def _scalars(record: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in record.items() if isinstance(v, (int, float))}
