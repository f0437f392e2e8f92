"""Stochastic weight averaging (Izmailov et al., 2018) with ``torch.optim.swa_utils``.

``train.swa: {start: 0.75, lr: 0.01}`` trains normally for the first ``start`` epochs (a number
below 1 is a fraction of ``train.epochs``), then:

- ``SWALR`` anneals every parameter group's learning rate to ``lr`` over ``anneal_epochs``
  epochs (stepped after every optimizer step) and holds it there; the recipe's own schedule
  no longer sets the rate (its steps are overridden);
- after the last optimizer step of each of these epochs, ``AveragedModel`` adds the weights to
  their running mean (equal weight per epoch);
- after the last step of the last epoch, ``update_bn`` recomputes the batch-norm statistics of
  the averaged weights over one pass of the training batches (the running statistics of the
  trained weights do not describe the averaged ones), and the averaged weights replace the
  model's. The epoch's validation then scores them, the checkpoint saved at that epoch end
  holds them and becomes ``best`` whatever the monitored value: they are the run's result
  (test evaluation, ``trainlab eval``, ``export``, ``model.init_from`` read them).

The running mean, its count and ``SWALR``'s position are part of every checkpoint (this
callback's ``state_dict``), so ``--resume`` continues the average exactly. A run stopped before
its last epoch (early stopping, ``max_steps``) keeps its raw weights.

>>> # train: {epochs: 20, swa: {start: 15, lr: 0.01}}
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn
from torch.optim.swa_utils import SWALR, AveragedModel, update_bn

from trainlab.errors import ConfigError

__all__ = ["SWA", "start_epoch"]

_NORMS = (nn.modules.batchnorm._BatchNorm,)


def start_epoch(start: float, epochs: int) -> int:
    """The number of epochs trained before averaging starts: ``start`` itself when ≥ 1 (an
    epoch count), else that fraction of ``epochs`` (rounded down).

    >>> start_epoch(0.75, 20), start_epoch(3, 20)
    (15, 3)
    """
    if start >= 1 and start != int(start):
        raise ConfigError(f"train.swa.start: {start} is neither a fraction (< 1) nor an epoch "
                          "count")  # fmt: skip
    first = int(start) if start >= 1 else math.floor(start * epochs)
    if first >= epochs:
        raise ConfigError(
            f"train.swa.start: averaging would start after epoch {first} of {epochs}: no epoch "
            "left to average (give a fraction below 1 or an epoch count below train.epochs)"
        )
    return first


class SWA:
    """Callback of ``train.swa`` (see the module docstring). ``keep_bn``: name prefixes whose
    batch-norm statistics ``update_bn`` must leave as they are (``train.freeze_bn``);
    ``accumulate``: batches per optimizer step, to count the annealing in optimizer steps."""

    def __init__(
        self,
        start: float = 0.75,
        lr: float | None = None,
        anneal_epochs: float = 1.0,
        anneal: str = "cos",
        accumulate: int = 1,
        keep_bn: tuple[str, ...] = (),
    ) -> None:
        self.start, self.lr, self.anneal_epochs, self.anneal = start, lr, anneal_epochs, anneal
        self.accumulate, self.keep_bn = accumulate, tuple(keep_bn)
        self.first = 0  # epochs before averaging, resolved at fit start
        self.averaged: AveragedModel | None = None
        self.scheduler: SWALR | None = None
        self._saved: dict[str, Any] | None = None  # restored state, applied at fit start

    # -- events ---------------------------------------------------------------------------------
    def on_fit_start(self, state: Any) -> None:
        self.first = start_epoch(self.start, state.max_epochs)
        self.averaged, self.scheduler = None, None
        saved, self._saved = self._saved, None
        if saved is not None and saved.get("averaged") is not None:  # --resume, rollback
            self._begin(state, saved["lr_at_start"])
            assert self.averaged is not None and self.scheduler is not None
            self.averaged.load_state_dict(saved["averaged"])
            self.scheduler.load_state_dict(saved["scheduler"])
            self._apply(state)

    def on_epoch_start(self, state: Any) -> None:
        if self.scheduler is None and state.epoch >= self.first:
            self._begin(state, None)
        elif self.scheduler is not None:
            self._apply(state)  # an epoch-interval schedule stepped at the last epoch end

    def on_batch_end(self, state: Any) -> None:
        if self.scheduler is None or self.averaged is None:
            return
        self._apply(state)  # a step-interval schedule stepped after this optimizer step
        self.scheduler.step()
        if state.batch == state.steps_per_epoch:  # the epoch's last optimizer step
            self.averaged.update_parameters(state.model)
            if state.epoch + 1 == state.max_epochs:
                self._finish(state)

    # -- parts ----------------------------------------------------------------------------------
    def _begin(self, state: Any, lrs: list[float] | None) -> None:
        """The averaged copy and SWALR, from the current weights and learning rates."""
        opt = state.optimizer
        if lrs is not None:  # resume: SWALR is built from the rates it was built from
            for g, lr in zip(opt.param_groups, lrs, strict=True):
                g["lr"] = lr
        self._lr_at_start = [float(g["lr"]) for g in opt.param_groups]
        self.averaged = AveragedModel(state.model)
        steps = math.ceil(state.steps_per_epoch / self.accumulate)  # optimizer steps per epoch
        swa_lr = self.lr if self.lr is not None else list(self._lr_at_start)
        self.scheduler = SWALR(
            opt, swa_lr=swa_lr, anneal_epochs=round(self.anneal_epochs * steps),
            anneal_strategy=self.anneal,  # type: ignore[arg-type]
        )  # fmt: skip

    def _apply(self, state: Any) -> None:
        """Set the rates SWALR last computed (another schedule may have changed them since)."""
        assert self.scheduler is not None
        for g, lr in zip(state.optimizer.param_groups, self.scheduler.get_last_lr(), strict=True):
            g["lr"] = lr

    def _finish(self, state: Any) -> None:
        """Batch-norm statistics of the averaged weights; those weights become the model's."""
        assert self.averaged is not None
        net = self.averaged.module
        kept = {n: [b.clone() for b in m.buffers()] for n, m in net.named_modules()
                if self.keep_bn and isinstance(m, _NORMS) and f"{n}.".startswith(self.keep_bn)}
        if state.data is not None:
            update_bn(_inputs(state.data), net)
        for name, buffers in kept.items():  # train.freeze_bn: these statistics stay as they are
            for b, old in zip(net.get_submodule(name).buffers(), buffers, strict=True):
                b.copy_(old)
        state.model.load_state_dict(net.state_dict())
        state.take_as_best = True  # the checkpoint of this epoch end becomes best

    # -- checkpoints ----------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        if self.averaged is None or self.scheduler is None:
            return {"averaged": None}
        return {
            "averaged": self.averaged.state_dict(),  # weights + n_averaged (tensors)
            "scheduler": self.scheduler.state_dict(),  # step count and rates (numbers)
            "lr_at_start": self._lr_at_start,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._saved = state


def _inputs(data: Any) -> Iterator[torch.Tensor]:
    """The training inputs of one epoch (epoch 0's order), for ``update_bn``."""
    for x, _ in data.loader("train").iter_epoch(0):
        yield x
