"""Classification and regression tasks."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch
from torch import nn

from trainlab.errors import ConfigError
from trainlab.tasks.base import StepOutput, register_task
from trainlab.tasks.losses import get_loss
from trainlab.tasks.mixing import mix_batch

if TYPE_CHECKING:  # torchmetrics takes seconds to import: loaded when metrics are first built
    from torchmetrics import MetricCollection

    from trainlab.data.base import DataModule

__all__ = ["ClassificationTask", "RegressionTask"]

Batch = tuple[torch.Tensor, torch.Tensor]

TTA_MODES = ("flip",)  # test-time augmentations: ``flip`` adds the mirror image


def tta_logits(model: nn.Module, x: torch.Tensor, tta: str, sigmoid: bool = False) -> torch.Tensor:
    """Logits of the class probabilities averaged over ``x`` and its TTA views (``flip``: the
    mirror image), so softmax (sigmoid for ``bce``), argmax and the loss read them as ordinary
    logits."""
    if x.dim() != 4:
        raise ConfigError(f"task.tta: '{tta}' needs image batches (N, C, H, W), got {x.dim()}-D")
    logits = torch.stack([model(v).float() for v in (x, x.flip(-1))])  # (views, N, K)
    if sigmoid:  # one-vs-rest: average each class's probability, back to a logit
        return torch.logit(torch.sigmoid(logits).mean(0), eps=1e-7)
    return torch.logsumexp(torch.log_softmax(logits, dim=-1), dim=0) - math.log(len(logits))


class ClassificationTask:
    """Multi-class classification: logits (N, K) against integer labels (N,)."""

    def __init__(
        self,
        loss: str = "cross_entropy",
        label_smoothing: float = 0.0,
        mixup_alpha: float = 0.0,
        cutmix_alpha: float = 0.0,
        tta: str | None = None,
    ) -> None:
        if loss not in ("cross_entropy", "bce"):
            raise ConfigError(
                f"task.loss: '{loss}' is not a classification loss; valid: bce, cross_entropy"
            )
        if cutmix_alpha < 0 or mixup_alpha < 0:
            raise ConfigError("task.mixup_alpha / task.cutmix_alpha: must be ≥ 0")
        self.loss_fn = get_loss(loss)
        self.label_smoothing = label_smoothing
        self.mixup_alpha, self.cutmix_alpha = mixup_alpha, cutmix_alpha
        if tta is not None and tta not in TTA_MODES:
            valid = ", ".join(TTA_MODES)
            raise ConfigError(f"task.tta: '{tta}' is not a test-time augmentation; valid: {valid}")
        self.tta, self._sigmoid = tta, loss == "bce"

    def check_data(self, data: DataModule) -> None:
        """Fails before training when ``tta`` cannot apply: it needs (C, H, W) images."""
        shape = tuple(getattr(data, "input_shape", ()))
        if self.tta is not None and len(shape) != 3:
            raise ConfigError(
                f"task.tta: '{self.tta}' needs image data (C, H, W samples); "
                f"the data's samples have shape {shape}"
            )

    def train_step(self, model: nn.Module, batch: Batch) -> StepOutput:
        x, y = batch
        if self.mixup_alpha > 0 or self.cutmix_alpha > 0:
            if self.cutmix_alpha > 0 and x.dim() != 4:
                raise ConfigError("task.cutmix_alpha: CutMix needs image batches (N, C, H, W)")
            x, perm, lam = mix_batch(x, self.mixup_alpha, self.cutmix_alpha)
            logits = model(x)
            s = self.label_smoothing
            loss = lam * self.loss_fn(logits, y, s) + (1 - lam) * self.loss_fn(logits, y[perm], s)
            return StepOutput(loss, logits.detach(), y)
        logits = model(x)  # (N, K)
        return StepOutput(self.loss_fn(logits, y, self.label_smoothing), logits.detach(), y)

    def eval_step(self, model: nn.Module, batch: Batch) -> StepOutput:
        x, y = batch
        logits = model(x) if self.tta is None else tta_logits(model, x, self.tta, self._sigmoid)
        # Evaluation loss without smoothing: comparable across recipes.
        return StepOutput(self.loss_fn(logits, y, 0.0), logits.float(), y)

    def metrics(self, num_classes: int | None) -> MetricCollection:
        from torchmetrics import MetricCollection
        from torchmetrics.classification import (
            MulticlassAccuracy,
            MulticlassConfusionMatrix,
            MulticlassF1Score,
            MulticlassPrecision,
            MulticlassRecall,
        )

        if not num_classes:
            raise ConfigError("task: classification needs data with classes (num_classes)")
        k = {"num_classes": num_classes, "validate_args": False}
        return MetricCollection(
            {
                "acc": MulticlassAccuracy(average="micro", **k),
                "precision": MulticlassPrecision(average="macro", **k),
                "recall": MulticlassRecall(average="macro", **k),
                "f1": MulticlassF1Score(average="macro", **k),
                "acc_per_class": MulticlassAccuracy(average=None, **k),
                "confusion": MulticlassConfusionMatrix(**k),
            }
        )

    def test_metrics(self, num_classes: int | None) -> MetricCollection:
        """metrics() plus one-vs-rest ROC/PR curves, AUROC, AP and top-5 accuracy, for the
        final evaluation (the curves are too big to log every epoch)."""
        from trainlab.metrics import curve_metrics

        m = self.metrics(num_classes)
        m.add_metrics(curve_metrics(num_classes))
        return m


class RegressionTask:
    """Regression: predictions (N,) or (N, 1) against float targets (N,)."""

    def __init__(self, loss: str = "mse") -> None:
        if loss not in ("mse", "l1", "huber"):
            raise ConfigError(
                f"task.loss: '{loss}' is not a regression loss; valid: huber, l1, mse"
            )
        self.loss_fn = get_loss(loss)

    def train_step(self, model: nn.Module, batch: Batch) -> StepOutput:
        x, y = batch
        return StepOutput(self.loss_fn(model(x), y, 0.0))

    def eval_step(self, model: nn.Module, batch: Batch) -> StepOutput:
        x, y = batch
        pred = model(x).float()
        pred = pred.squeeze(-1) if pred.dim() == y.dim() + 1 else pred
        return StepOutput(self.loss_fn(pred, y, 0.0), pred, y.float())

    def metrics(self, num_classes: int | None) -> MetricCollection:
        from torchmetrics import MetricCollection
        from torchmetrics.regression import MeanAbsoluteError, MeanSquaredError, R2Score

        return MetricCollection(
            {
                "mae": MeanAbsoluteError(),
                "mse": MeanSquaredError(),
                "rmse": MeanSquaredError(squared=False),
                "r2": R2Score(),
            }
        )


@register_task("classification")
def classification(
    *,
    loss: str = "cross_entropy",
    label_smoothing: float = 0.0,
    mixup_alpha: float = 0.0,
    cutmix_alpha: float = 0.0,
    tta: str | None = None,
) -> ClassificationTask:
    """Cross-entropy (with optional label smoothing) or one-vs-rest BCE over K classes;
    ``mixup_alpha``/``cutmix_alpha`` > 0 turn on Mixup/CutMix in training; ``tta: flip``
    averages each evaluation's class probabilities over the image and its mirror image."""
    return ClassificationTask(loss, label_smoothing, mixup_alpha, cutmix_alpha, tta)


@register_task("regression")
def regression(*, loss: str = "mse") -> RegressionTask:
    """Regression with MSE, L1 or Huber loss."""
    return RegressionTask(loss)
