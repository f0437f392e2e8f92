"""The task contract: what one kind of objective computes for a batch.

A task turns a batch into a loss (``train_step``) and into metric updates (``eval_step``); the
trainer owns everything else (precision, backward, optimizer, logging). GAN or VAE training is a
task, not a second loop.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import torch
from torch import nn

from trainlab.registry import Registry

if TYPE_CHECKING:
    from torchmetrics import MetricCollection

__all__ = ["TASKS", "register_task", "Task", "StepOutput"]


@dataclass
class StepOutput:
    """``loss``: scalar tensor (kept on device; the trainer syncs it every ``log_every`` steps).
    ``preds``/``target``: what training-time metrics (accuracy) are computed from.

    Optional task hooks the trainer calls when present: ``setup(model, device)`` once before
    training (e.g. build a second optimizer), ``state_dict()``/``load_state_dict()`` (saved in
    checkpoints), ``optim_module(model)`` (the part of the model the main optimizer updates),
    ``check_data(data)`` (raise ``ConfigError`` when the task cannot use this data, before any
    training), ``metric_names(num_classes, out)`` (the keys ``metrics()`` will have, when they
    will surely score outputs like the preflight batch's ``out``: the metrics are then built
    at the first validation, not before the first step; None to have preflight score ``out``)."""

    loss: torch.Tensor
    preds: torch.Tensor | None = None
    target: torch.Tensor | None = None
    # Further scalar tensors to log as train/<name> and <split>/<name> (e.g. the two ELBO terms).
    extras: dict[str, torch.Tensor] | None = None


@runtime_checkable
class Task(Protocol):
    def train_step(
        self, model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]
    ) -> StepOutput: ...

    def eval_step(
        self, model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]
    ) -> StepOutput: ...

    def metrics(self, num_classes: int | None) -> MetricCollection: ...


TASKS: Registry[Callable[..., Task]] = Registry(
    "task", expected="def my_task(*, option: type = default) -> Task, or a class with "
    "train_step, eval_step and metrics whose __init__ takes its options by name",
)


def register_task(name: str) -> Callable[[Callable[..., Task]], Callable[..., Task]]:
    return TASKS.register(name)
