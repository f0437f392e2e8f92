"""The gradients of chosen optimizer steps, kept alive until ``on_batch_end`` reads them.

The loop frees gradients (``zero_grad(set_to_none=True)``) right after ``optimizer.step()``,
before callbacks run. Loggers that need gradients (TensorBoard histograms, the weight monitor)
keep their own references, only for the steps they log.
"""

from __future__ import annotations

import functools
from typing import Any

import torch
from torch import nn

__all__ = ["StepGrads"]


class StepGrads:
    """Holds each parameter's gradient as the optimizer used it, every ``every`` steps.

    A post-accumulate hook sees ``p.grad`` once backward has filled it; the reference keeps
    that tensor alive until ``on_batch_end`` reads it, and later in-place changes (gradient
    accumulation, AMP unscaling, clipping, DDP averaging) are visible through it. Hooks are
    armed only before logged steps, so other steps pay nothing.

    Use: ``start(model, state.step)`` in ``on_fit_start``; in ``on_batch_end`` read
    ``grad(name, p)`` when ``state.step % every == 0``, then ``advance(model, state.step)``.
    """

    def __init__(self, every: int) -> None:
        if every < 1:
            raise ValueError(f"every must be >= 1, got {every}")
        self.every = every
        self._hooks: list[Any] = []
        self._grads: dict[str, torch.Tensor] = {}

    def start(self, model: nn.Module, step: int) -> None:
        """Arm the hooks if the coming step (``step + 1``) is a logged one."""
        if (step + 1) % self.every == 0:
            self._arm(model)

    def advance(self, model: nn.Module, step: int) -> None:
        """After step ``step`` was handled: drop its gradients, arm for the next if logged."""
        self.close()
        self.start(model, step)

    def grad(self, name: str, p: torch.Tensor) -> torch.Tensor | None:
        """The gradient of parameter ``name`` in the step just taken (None if it had none)."""
        return self._grads.get(name, p.grad)

    def close(self) -> None:
        for hook in self._hooks:
            hook.remove()
        self._hooks, self._grads = [], {}

    def _arm(self, model: nn.Module) -> None:
        for name, p in model.named_parameters():
            if p.requires_grad:
                hook = p.register_post_accumulate_grad_hook(functools.partial(self._keep, name))
                self._hooks.append(hook)

    def _keep(self, name: str, p: torch.Tensor) -> None:
        if p.grad is not None:
            self._grads[name] = p.grad
