"""The optimizer a task owns for part of the model (a GAN's or an adversarial autoencoder's
discriminator), next to the recipe's optimizer that the trainer steps."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from trainlab.errors import ConfigError

__all__ = ["SideOptimizer", "DiscriminatorTask", "refuse_fp16"]


def refuse_fp16(task: str, device_type: str) -> None:
    """A one-line error under fp16 autocast: fp16 needs a gradient scaler, and the trainer's
    scales the task's main loss only, so the discriminator step would run unscaled."""
    if torch.is_autocast_enabled(device_type) and (
        torch.get_autocast_dtype(device_type) == torch.float16
    ):
        raise ConfigError(
            f"task {task}: train.precision fp16 is not supported (the discriminator step has no "
            "gradient scaler); use bf16 or fp32"
        )


class SideOptimizer:
    """An Adam over one module's parameters, built when the task is set up and saved in the
    task's checkpoint state.

    ``build`` may be called again (a resumed or rolled-back run sets the task up again): for the
    same parameters it keeps the optimizer and its moments. A state loaded before the optimizer
    exists (checkpoints are restored before training starts) is applied when it is built.
    """

    def __init__(self, lr: float, betas: tuple[float, float]) -> None:
        self.lr, self.betas = lr, betas
        self.opt: torch.optim.Optimizer | None = None
        self._pending: dict[str, Any] | None = None

    def build(self, module: nn.Module) -> torch.optim.Optimizer:
        params = list(module.parameters())
        if self.opt is not None:
            built = [p for g in self.opt.param_groups for p in g["params"]]
            if [id(p) for p in built] == [id(p) for p in params]:
                return self.opt
        self.opt = torch.optim.Adam(params, lr=self.lr, betas=self.betas)
        if self._pending is not None:
            self.opt.load_state_dict(self._pending)
            self._pending = None
        return self.opt

    def step(self, loss: torch.Tensor) -> None:
        """One update of the module on ``loss``. Gradients are cleared before (the main
        objective's backward also reaches this module) and after (the trainer's clipping then
        sees the main optimizer's gradients alone)."""
        assert self.opt is not None, "build() first"
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        self.opt.zero_grad(set_to_none=True)

    def state_dict(self) -> dict[str, Any] | None:
        return self.opt.state_dict() if self.opt is not None else self._pending

    def load_state_dict(self, state: dict[str, Any] | None) -> None:
        if self.opt is not None and state is not None:
            self.opt.load_state_dict(state)
        else:
            self._pending = state


class DiscriminatorTask:
    """Small base of the tasks whose discriminator trains with its own :class:`SideOptimizer`
    (``self.d_side``): the task's checkpoint state is that optimizer's, under ``d_optimizer``."""

    d_side: SideOptimizer
    loss_may_rise = True  # the discriminator's loss climbs as the generator gets better

    @property
    def d_optimizer(self) -> torch.optim.Optimizer | None:
        return self.d_side.opt

    def state_dict(self) -> dict[str, Any]:
        return {"d_optimizer": self.d_side.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.d_side.load_state_dict(state.get("d_optimizer"))
