"""Adversarial training (Madry et al., 2018) as an option of the classification task:
``task: {name: classification, adversarial: {method: pgd, eps: 0.1, steps: 3, mix: 0.5}}``.

Each training batch is attacked (FGSM, or PGD with ``steps`` steps from a random start drawn
from the global RNG, which checkpoints save) within ``eps`` — a fraction of the data's value
range, as in ``trainlab attack`` — with the model in eval mode (the attack's forward passes do
not update batch-norm statistics); the loss is ``mix`` × loss on the attacked batch +
(1 − ``mix``) × loss on the clean one. Evaluation stays on clean inputs; ``trainlab attack``
measures robustness. The ``adversarial`` task is the same thing under its own name.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from trainlab.data.base import DataModule
from trainlab.errors import ConfigError
from trainlab.tasks.base import StepOutput

__all__ = ["AdversarialOptions", "Attacker", "data_box"]


class AdversarialOptions(BaseModel):
    """``task.adversarial``: the attack each training batch goes through."""

    model_config = ConfigDict(extra="forbid")

    method: Literal["fgsm", "pgd"] = "pgd"
    eps: float = Field(0.1, gt=0.0, le=1.0)  # L∞ radius, a fraction of the data's value range
    steps: int = Field(5, ge=1)  # PGD steps (FGSM: one)
    mix: float = Field(0.5, ge=0.0, le=1.0)  # weight of the attacked batch's loss


def data_box(data: DataModule) -> Any:
    """The attack's ``Box`` (normalisation, value range in stored units) of a data module."""
    from trainlab.compress.attack import Box

    shape = tuple(getattr(data, "input_shape", ()))
    mean, std = getattr(data, "mean", None), getattr(data, "std", None)
    view = (1, -1) + (1,) * (len(shape) - 1)
    splits = getattr(data, "splits", None)
    if getattr(data, "vocab", None) is not None or not shape:
        raise ConfigError("task: adversarial training needs real-valued inputs, not token ids")
    if splits:  # in-memory data: the training split's stored range
        x = splits["train"][0]
        lo, hi = (0.0, 255.0) if x.dtype == torch.uint8 else (float(x.min()), float(x.max()))
    else:  # image folders: torchvision's 0..1 before normalisation
        lo, hi = 0.0, 1.0
    m = torch.tensor(mean if mean else [0.0]).view(view)
    s = torch.tensor(std if std else [1.0]).view(view)
    return Box(m, s, lo, hi)


Loss = Callable[[torch.Tensor, torch.Tensor, float], torch.Tensor]


class Attacker:
    """Attacks training batches and mixes the losses (see the module docstring)."""

    def __init__(self, opts: AdversarialOptions) -> None:
        self.opts = opts
        self.box: Any = None

    def setup(self, data: DataModule) -> None:
        self.box = data_box(data)

    def attack(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """``x`` (normalised) moved within the ε-ball to raise the loss; same dtype."""
        from trainlab.compress.attack import fgsm, pgd

        box, o = self.box, self.opts
        if box.mean.device != x.device:
            box.mean, box.std = box.mean.to(x.device), box.std.to(x.device)
        e = o.eps * (box.hi - box.lo)
        raw = box.raw(x.float())
        modes = [(m, m.training) for m in model.modules()]  # restored exactly (train.freeze_bn)
        model.eval()
        try:
            with torch.enable_grad():
                adv = (fgsm(model, box, raw, y, e) if o.method == "fgsm"
                       else pgd(model, box, raw, y, e, o.steps))  # fmt: skip
        finally:
            for m, training in modes:
                m.training = training
        return box.norm(adv).detach().to(x.dtype)

    def step(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, loss_fn: Loss,
             smoothing: float) -> StepOutput:  # fmt: skip
        """The training step on the attacked batch (mixed with the clean one)."""
        logits = model(self.attack(model, x, y))  # (N, K)
        loss = loss_fn(logits, y, smoothing)
        extras = {"adv_loss": loss.detach()}
        if self.opts.mix < 1.0:
            clean = loss_fn(model(x), y, smoothing)
            loss = self.opts.mix * loss + (1 - self.opts.mix) * clean
            extras["clean_loss"] = clean.detach()
        return StepOutput(loss, logits.detach(), y, extras=extras)
