"""The one training loop.

Read :meth:`Trainer.fit` top to bottom: it is the whole of training. Objectives plug in as tasks
(``task.train_step`` returns the loss), everything else plugs in as callbacks on named events
(see ``trainlab.train.events``). The hot path does no host synchronisation: losses accumulate on
the device and are read every ``log_every`` steps.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from trainlab.data.base import DataModule, Loader
from trainlab.tasks.base import StepOutput, Task
from trainlab.train.conv_act import fuse_conv_act
from trainlab.train.distributed import agree_any, all_reduce_sum, init_distributed, shard
from trainlab.train.events import EVENTS
from trainlab.train.folding import fold_batchnorm
from trainlab.train.host_memory import keep_freed_memory
from trainlab.train.precision import (
    autocast,
    resolve_device,
    resolve_precision,
    wants_channels_last,
)
from trainlab.train.running import RunningSums
from trainlab.train.state import TrainState

__all__ = ["Trainer"]


class Trainer:
    """Runs training and evaluation; options mirror the recipe's ``train`` section.

    >>> from trainlab import create_model, build_data, Trainer   # doctest: +SKIP
    >>> data = build_data("synthetic", num_classes=4)              # doctest: +SKIP
    >>> model = create_model("mlp", in_features=64, num_classes=4)  # doctest: +SKIP
    >>> opt = torch.optim.SGD(model.parameters(), lr=0.1)         # doctest: +SKIP
    >>> state = Trainer(epochs=3).fit(model, task, data, opt)      # doctest: +SKIP

    ``progress`` (default on) shows the CLI's progress bar and per-epoch line during ``fit``
    unless a :class:`~trainlab.callbacks.ProgressBar` is among the callbacks already;
    ``progress=False`` keeps it quiet.
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
        accumulate: int = 1,
        ema_decay: float | None = None,
        l1: float = 0.0,
        l2: float = 0.0,
        penalty_on: Sequence[str] = (),
        nan_policy: str = "stop",
        deterministic: bool = False,
        sync_batchnorm: bool = False,
        fold_batchnorm: bool = True,
        callbacks: Sequence[Any] = (),
        progress: bool = True,
    ) -> None:
        self.epochs = epochs
        self.progress = progress
        self.device = resolve_device(device)
        if self.device.type == "cpu":
            keep_freed_memory()  # no page faults for every batch's activations (host_memory)
        self.dist = init_distributed(self.device.type)
        if self.dist.enabled and self.device.type == "cuda":
            self.device = torch.device("cuda", self.dist.local_rank)  # one GPU per process
        self.sync_batchnorm = sync_batchnorm
        self.fold_batchnorm = fold_batchnorm  # evaluation only: BN folded into the conv before it
        self.precision = resolve_precision(precision, self.device)
        self.channels_last_setting = channels_last
        self.channels_last = False
        self.grad_clip, self.grad_clip_mode = grad_clip, grad_clip_mode
        self.log_every, self.max_steps = log_every, max_steps
        self.ema_decay = ema_decay
        self.l1, self.l2, self.penalty_on = l1, l2, list(penalty_on)
        self.run_dir: Path | None = None  # set by trainlab.run; callbacks may write there
        self.callbacks = list(callbacks)
        if accumulate < 1:
            raise ValueError("accumulate must be ≥ 1")
        if nan_policy not in ("stop", "skip", "rollback"):
            raise ValueError(f"nan_policy must be 'stop', 'skip' or 'rollback', got {nan_policy!r}")
        self.accumulate, self.nan_policy = accumulate, nan_policy
        if deterministic:
            # cuBLAS needs a fixed workspace for deterministic matmuls; harmless on the CPU.
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
            torch.use_deterministic_algorithms(True)
            torch.backends.cudnn.benchmark = False
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
        callbacks = list(self.callbacks)
        if self.progress and self.dist.rank == 0:
            from trainlab.callbacks.progress import ProgressBar

            if not any(isinstance(cb, ProgressBar) for cb in callbacks):
                callbacks.append(ProgressBar())  # what `trainlab train` shows, from Python too
        self._handlers = {
            e: [cb for cb in callbacks if callable(getattr(cb, e, None))] for e in EVENTS
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

        ``state``, when given, is a restored :class:`TrainState` (``trainlab.run`` restores one
        from a checkpoint): the loop continues at its epoch and batch.
        """
        self._bind()
        self.prepare(model)
        # Under torchrun the step runs through DDP (gradients averaged across ranks); the bare
        # model is what is evaluated and checkpointed.
        net = self._wrap(model)
        if callable(getattr(task, "setup", None)):
            task.setup(model, self.device)  # type: ignore[attr-defined]
        train_loader = data.loader("train")
        # A loader that already yields this rank's share (DistributedSampler) is not sliced.
        train_sharded = getattr(train_loader, "sharded", False)
        has_val = data.sizes.get("val", 0) > 0
        # Built at the first validation: torchmetrics (~1 s to import) stays off the path to
        # the first training step (preflight names the metrics without building them).
        val_metrics: Any = None
        if state is None:
            state = TrainState(model=model, optimizer=optimizer, schedule=schedule)
        state.max_epochs, state.steps_per_epoch = self.epochs, len(train_loader)
        state.task, state.data = task, data
        state.run_dir = state.run_dir or self.run_dir
        if state.scaler is None and self.precision == "fp16":
            state.scaler = torch.amp.GradScaler("cuda")
        if state.ema is None and self.ema_decay is not None:
            state.ema = self.make_ema(model)
        step_sched = schedule is not None and schedule.interval == "step"
        accum = self.accumulate
        penalized = self._penalized(model)
        window, epoch_sums = RunningSums(self.device), RunningSums(self.device)
        group_has_grad = False  # a batch of the current accumulation group ran backward

        self.emit("on_fit_start", state)
        stop = self._stop_now(state, at_sync=True)  # a signal may arrive during set-up
        try:
            while state.epoch < self.epochs and not stop:
                model.train()  # before on_epoch_start: a callback may keep parts in eval mode
                self.emit("on_epoch_start", state)
                window.reset(start=state.step + 1)
                epoch_sums.reset()
                t_epoch, n_epoch = time.perf_counter(), 0
                for batch in train_loader.iter_epoch(state.epoch, start=state.batch):
                    x, y = batch if train_sharded else shard(batch, self.dist)  # (B/world, …)
                    x = self._as_input(x)
                    with self.autocast():
                        out = task.train_step(net, (x, y))  # out.loss: scalar tensor
                    if penalized:
                        out = self._add_penalty(out, penalized)
                    if self.nan_policy == "skip" and agree_any(
                        not bool(torch.isfinite(out.loss)), self.dist, self.device
                    ):  # every rank drops the batch if any rank's loss is non-finite
                        state.skipped += 1  # dropped before backward; costs a sync per batch
                    else:
                        # Under accumulation each micro-batch gives 1/accum of the gradient.
                        loss = out.loss / accum if accum > 1 else out.loss
                        if state.scaler is not None:
                            state.scaler.scale(loss).backward()
                        else:
                            loss.backward()
                        window.add(out, y)
                        group_has_grad = True
                    state.batch += 1
                    n_epoch += len(y)
                    if state.batch % accum and state.batch < len(train_loader):
                        continue  # gradients keep accumulating until the group is complete
                    if not group_has_grad:
                        continue  # every batch of the group was skipped: no optimizer step
                    group_has_grad = False

                    if state.scaler is not None:
                        state.scaler.unscale_(optimizer)  # clip true gradients, not scaled ones
                    self._clip(model)
                    if state.scaler is not None:
                        state.scaler.step(optimizer)
                        state.scaler.update()
                    else:
                        optimizer.step()
                    optimizer.zero_grad(set_to_none=True)
                    if state.ema is not None:
                        state.ema.update_parameters(model)  # foreach lerp, no sync
                    if step_sched:
                        schedule.scheduler.step()
                    state.step += 1

                    if state.step % self.log_every == 0:
                        self._check_finite(state, window)
                        self.log(state, {**window.read(), "lr": state.lr})
                        epoch_sums.merge(window)
                        window.reset(start=state.step + 1)
                    self.emit("on_batch_end", state)
                    at_max = self.max_steps is not None and state.step >= self.max_steps
                    if at_max:
                        state.should_stop, state.stop_reason = True, f"max_steps={self.max_steps}"
                    if self._stop_now(state, at_max or state.step % self.log_every == 0):
                        break

                # End of the epoch. A run stopped mid-epoch skips validation: its position
                # (epoch, batch) is saved by on_fit_end handlers and resumes exactly there.
                self._check_finite(state, window)
                if state.batch < len(train_loader) or state.diverged:
                    break
                elapsed = time.perf_counter() - t_epoch
                state.samples_per_s = n_epoch / elapsed if elapsed > 0 else 0.0
                epoch_sums.merge(window)
                window.reset()
                record: dict[str, Any] = epoch_sums.read(suffix="_epoch")
                record.update({"train/samples_per_s": state.samples_per_s, "lr": state.lr})
                if state.skipped:
                    record["train/skipped_batches"] = state.skipped
                if has_val:
                    if val_metrics is None:
                        val_metrics = task.metrics(data.num_classes).to(self.device)
                    val_loader = data.loader("val")
                    # With EMA on, the averaged weights are the ones evaluated and selected.
                    scored = state.ema.module if state.ema is not None else model
                    record.update(self.evaluate(scored, task, val_loader, "val", val_metrics))
                state.epoch += 1
                state.batch = 0
                self.log(state, record)
                if has_val:
                    self.emit("on_validation_end", state)
                if schedule is not None and schedule.interval == "epoch":
                    schedule.scheduler.step(state.metrics[schedule.monitor])
                state.history.append({"epoch": state.epoch, **_scalars(record)})
                self.emit("on_epoch_end", state)
                stop = self._stop_now(state, at_sync=True)  # ranks agree before the next epoch
        except BaseException as exc:
            self.emit("on_exception", state, exc)
            raise
        self.emit("on_fit_end", state)
        return state

    def _wrap(self, model: nn.Module) -> nn.Module:
        if not self.dist.enabled:
            return model
        from torch.nn.parallel import DistributedDataParallel

        if self.sync_batchnorm:
            model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
        ids = [self.dist.local_rank] if self.device.type == "cuda" else None
        return DistributedDataParallel(model, device_ids=ids)

    def make_ema(self, model: nn.Module) -> AveragedModel:
        """An exponential moving average of ``model``'s weights (and norm buffers):
        ``ema = decay·ema + (1−decay)·weights`` after every optimizer step."""
        assert self.ema_decay is not None
        fn = get_ema_multi_avg_fn(self.ema_decay)
        return AveragedModel(model, multi_avg_fn=fn, use_buffers=True)

    def _as_input(self, x: torch.Tensor) -> torch.Tensor:
        # (Graph data's inputs are node batches, not tensors: left as they are.)
        if self.channels_last and isinstance(x, torch.Tensor) and x.dim() == 4:
            return x.contiguous(memory_format=torch.channels_last)
        return x

    def _stop_now(self, state: TrainState, at_sync: bool) -> bool:
        """Whether to leave the loop now. Under DDP every rank must leave at the same step (a
        rank that stops alone leaves the others blocked in the next all-reduce), so a stop
        request (a signal reaches each rank at a different moment) takes effect at the next
        log point or epoch end, where the ranks agree on it; no extra sync on other steps."""
        if not self.dist.enabled:
            return state.should_stop
        if not at_sync:
            return False
        # The agreed value, not state.should_stop read again: a signal handled right after
        # the all-reduce sets the flag on this rank only; it is agreed on at the next sync.
        agreed = agree_any(state.should_stop, self.dist, self.device)
        if agreed and not state.should_stop:
            state.should_stop, state.stop_reason = True, "stopped with the other ranks"
        return agreed

    def _check_finite(self, state: TrainState, window: RunningSums) -> None:
        """Policies ``stop`` and ``rollback``: end training when a loss of the window was
        NaN/Inf (a NaN or Inf makes the window's sum non-finite, so no per-step check is
        needed); ``trainlab.run`` rolls back. Under DDP the ranks decide together."""
        if self.nan_policy == "skip" or state.diverged:
            return
        # The host sync; only at log points and epoch ends.
        bad = bool(window.steps) and not bool(torch.isfinite(window.loss))
        if not agree_any(bad, self.dist, self.device):
            return
        state.diverged = True
        state.should_stop = True
        first = window.first_bad_batch()  # this rank's first bad batch of the window
        if first is not None:  # micro-batch i of the window belongs to step start + i // accum
            steps = f"step {window.start + first // self.accumulate} (first non-finite)"
        elif window.start >= state.step:
            steps = f"step {state.step}"
        else:  # another rank's loss went bad
            steps = f"steps {window.start}-{state.step}"
        state.stop_reason = (
            f"non-finite loss in {steps} (train.nan_policy={self.nan_policy}); try a lower "
            "optim.lr, train.grad_clip, or train.nan_policy=skip or rollback"
        )

    def _penalized(self, model: nn.Module) -> list[nn.Parameter]:
        """Parameters the L1/L2 penalty terms apply to: weight tensors (≥ 2-d) whose names
        start with one of ``penalty_on`` (all of them when it is empty)."""
        if not (self.l1 or self.l2):
            return []
        prefixes = tuple(self.penalty_on)
        return [
            p for n, p in model.named_parameters()
            if p.requires_grad and p.dim() >= 2 and (not prefixes or n.startswith(prefixes))
        ]  # fmt: skip

    def _add_penalty(self, out: StepOutput, params: list[nn.Parameter]) -> StepOutput:
        # In fp32, outside autocast: λ1·Σ|w| + λ2·Σw² (coupled, unlike decoupled weight decay).
        penalty = torch.zeros((), device=self.device)
        if self.l1:
            penalty = penalty + self.l1 * sum(p.abs().sum() for p in params)
        if self.l2:
            penalty = penalty + self.l2 * sum(p.pow(2).sum() for p in params)
        extras = {**(out.extras or {}), "penalty": penalty.detach()}
        return StepOutput(out.loss + penalty, out.preds, out.target, extras)

    def _clip(self, model: nn.Module) -> None:
        if self.grad_clip is None:
            return
        if self.grad_clip_mode == "norm":
            torch.nn.utils.clip_grad_norm_(model.parameters(), self.grad_clip)
        else:
            torch.nn.utils.clip_grad_value_(model.parameters(), self.grad_clip)

    # -- evaluation ------------------------------------------------------------------------------
    @torch.no_grad()
    def evaluate(
        self, model: nn.Module, task: Task, loader: Loader, split: str, metrics: Any
    ) -> dict[str, Any]:
        """Loss and task metrics over one split, as ``{f"{split}/{name}": value}``.

        Metrics stream through torchmetrics (no logits kept); per-class figures and the
        confusion matrix come back as lists. With ``fold_batchnorm`` (the default), a copy of
        the model with its batch norms folded into the convolutions before them is evaluated,
        and on the CPU each convolution and the ReLU/GELU after it run as one kernel: the same
        predictions to float rounding, faster (``trainlab.train.folding``, ``.conv_act``).
        """
        was_training = model.training
        model.eval()
        net = fold_batchnorm(model) if self.fold_batchnorm else model
        if self.fold_batchnorm and self.device.type == "cpu":  # conv + ReLU/GELU in one kernel
            net = fuse_conv_act(net, inplace=net is not model)
        metrics.reset()
        loss_sum = torch.zeros((), device=self.device)
        extras: dict[str, torch.Tensor] = {}
        n = 0
        for batch in loader.iter_epoch(0):
            # Each rank scores its slice; sums are reduced below.
            x, y = batch if getattr(loader, "sharded", False) else shard(batch, self.dist)
            x = self._as_input(x)
            with self.autocast():
                out = task.eval_step(net, (x, y))
            loss_sum += out.loss.float() * len(y)  # mean loss per sample over the split
            for k, v in (out.extras or {}).items():
                extras[k] = extras.get(k, 0) + v.detach().float() * len(y)
            n += len(y)
            if out.preds is not None:
                metrics.update(out.preds, out.target)
        model.train(was_training)
        totals = all_reduce_sum(torch.stack([loss_sum, torch.tensor(float(n), device=self.device)]),
                                self.dist)  # fmt: skip
        # torchmetrics reduces its own states across ranks in compute().
        count = max(float(totals[1]), 1.0)
        result: dict[str, Any] = {f"{split}/loss": float(totals[0]) / count}
        for k, v in extras.items():
            result[f"{split}/{k}"] = float(all_reduce_sum(v.reshape(1), self.dist)) / count
        for name, value in metrics.compute().items():
            result[f"{split}/{name}"] = value.item() if value.numel() == 1 else value.tolist()
        return result


def _scalars(record: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in record.items() if isinstance(v, (int, float))}
