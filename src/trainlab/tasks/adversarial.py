"""Adversarial training (Madry et al., 2018): classification on inputs perturbed by an L∞
attack against the current model, so that the model learns to resist it.

Each training batch is attacked (FGSM, or PGD with ``steps`` steps from a random start drawn
from the global RNG, which checkpoints save) within ``eps`` — a fraction of the data's value
range, as in ``trainlab attack`` — with the model in eval mode (batch-norm statistics are not
updated by the attack's forward passes); the loss is ``mix`` × loss on the adversarial batch +
(1 − ``mix``) × loss on the clean one. Evaluation is on clean inputs; ``trainlab attack``
measures robustness.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from trainlab.data.base import Batch, DataModule
from trainlab.errors import ConfigError
from trainlab.tasks.base import StepOutput, register_task
from trainlab.tasks.classification import ClassificationTask

__all__ = ["AdversarialTask", "adversarial"]


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


class AdversarialTask(ClassificationTask):
    """Classification trained on FGSM/PGD-perturbed batches (mixed with clean ones)."""

    def __init__(self, method: str, eps: float, steps: int, mix: float, **kw: Any) -> None:
        super().__init__(**kw)
        if method not in ("fgsm", "pgd"):
            raise ConfigError(f"task.method: '{method}'; valid: fgsm, pgd")
        if not 0.0 < eps <= 1.0 or steps < 1 or not 0.0 <= mix <= 1.0:
            raise ConfigError("task.eps must lie in (0, 1] (a fraction of the data's range), "
                              "task.steps ≥ 1, task.mix within [0, 1]")  # fmt: skip
        self.method, self.eps, self.steps, self.mix = method, eps, steps, mix
        self.box: Any = None

    def check_data(self, data: DataModule) -> None:
        super().check_data(data)
        self.box = data_box(data)

    def _attack(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        from trainlab.compress.attack import fgsm, pgd

        box = self.box
        if box.mean.device != x.device:
            box.mean, box.std = box.mean.to(x.device), box.std.to(x.device)
        e = self.eps * (box.hi - box.lo)
        raw = box.raw(x.float())
        was = model.training
        model.eval()
        try:
            with torch.enable_grad():
                adv = (fgsm(model, box, raw, y, e) if self.method == "fgsm"
                       else pgd(model, box, raw, y, e, self.steps))  # fmt: skip
        finally:
            model.train(was)
        return box.norm(adv).detach().to(x.dtype)

    def train_step(self, model: nn.Module, batch: Batch) -> StepOutput:
        x, y = batch
        adv = self._attack(model, x, y)
        logits = model(adv)  # (N, K)
        loss = self.loss_fn(logits, y, self.label_smoothing)
        extras = {"adv_loss": loss.detach()}
        if self.mix < 1.0:
            clean = self.loss_fn(model(x), y, self.label_smoothing)
            loss = self.mix * loss + (1 - self.mix) * clean
            extras["clean_loss"] = clean.detach()
        return StepOutput(loss, logits.detach(), y, extras=extras)


@register_task("adversarial")
def adversarial(
    *,
    method: str = "pgd",
    eps: float = 0.1,
    steps: int = 5,
    mix: float = 0.5,
    label_smoothing: float = 0.0,
    tta: str | None = None,
) -> AdversarialTask:
    """Classification trained against an L∞ ``method`` attack (``fgsm``/``pgd``) of size
    ``eps`` (a fraction of the data's value range), ``mix`` the adversarial loss's weight.

    >>> # task: {name: adversarial, method: pgd, eps: 0.1, steps: 5}
    """
    return AdversarialTask(method, eps, steps, mix, label_smoothing=label_smoothing, tta=tta)
