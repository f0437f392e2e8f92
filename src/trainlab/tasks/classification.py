"""Classification and regression tasks."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from trainlab.errors import ConfigError
from trainlab.metrics.registry import build_metric
from trainlab.tasks.attacked import AdversarialOptions, Attacker
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
        loss_options: dict[str, Any] | None = None,
        metrics: list[str] | None = None,
        adversarial: AdversarialOptions | None = None,
    ) -> None:
        if cutmix_alpha < 0 or mixup_alpha < 0:
            raise ConfigError("task.mixup_alpha / task.cutmix_alpha: must be ≥ 0")
        if adversarial is not None and (mixup_alpha > 0 or cutmix_alpha > 0):
            raise ConfigError("task.adversarial: not together with mixup_alpha / cutmix_alpha")
        # Adversarial training (trainlab.tasks.attacked): every training batch attacked.
        self.attacker = Attacker(adversarial) if adversarial is not None else None
        self.loss_fn = get_loss(loss, options=loss_options, kind="classification")
        if label_smoothing and not getattr(self.loss_fn, "smooths", False):
            raise ConfigError(
                f"task.label_smoothing: loss '{loss}' takes no label_smoothing parameter"
            )
        self.extra_metrics = list(metrics or [])
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
        if self.attacker is not None:
            self.attacker.setup(data)  # the value range and normalisation the attack works in

    def train_step(self, model: nn.Module, batch: Batch) -> StepOutput:
        x, y = batch
        if self.attacker is not None:
            return self.attacker.step(model, x, y, self.loss_fn, self.label_smoothing)
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

    def metric_names(self, num_classes: int | None, out: StepOutput) -> list[str] | None:
        """The keys of :meth:`metrics`, when they will surely score outputs like ``out``
        (logits (N, K) and labels 0..K-1, no extra metrics): preflight then leaves the
        torchmetrics import to the first validation. None otherwise (preflight scores ``out``).
        """
        preds, target = out.preds, out.target
        if self.extra_metrics or self._sigmoid or not num_classes or preds is None:
            return None
        if target is None or preds.dim() != 2 or preds.shape[1] != num_classes:
            return None
        if target.dim() != 1 or len(target) != len(preds) or target.is_floating_point():
            return None
        if len(target) and not (0 <= int(target.min()) and int(target.max()) < num_classes):
            return None
        return sorted(["acc", "precision", "recall", "f1", "acc_per_class", "confusion"])

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
                **{name: build_metric(name, num_classes) for name in self.extra_metrics},
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

    def __init__(
        self,
        loss: str = "mse",
        loss_options: dict[str, Any] | None = None,
        metrics: list[str] | None = None,
    ) -> None:
        self.loss_fn = get_loss(loss, options=loss_options, kind="regression")
        self.extra_metrics = list(metrics or [])

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
                **{name: build_metric(name, num_classes) for name in self.extra_metrics},
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
    loss_options: dict[str, Any] = {},  # noqa: B006 - never mutated
    metrics: list[str] = [],  # noqa: B006 - never mutated
    adversarial: AdversarialOptions | None = None,
) -> ClassificationTask:
    """Cross-entropy (with optional label smoothing) or one-vs-rest BCE over K classes;
    ``mixup_alpha``/``cutmix_alpha`` > 0 turn on Mixup/CutMix in training; ``tta: flip``
    averages each evaluation's class probabilities over the image and its mirror image.
    ``loss``: a built-in or registered loss (``trainlab list losses``), ``loss_options`` its
    options; ``metrics``: extra metrics by name (``trainlab list metrics``, or a torchmetrics
    class name) reported as ``val/<name>`` and ``test/<name>``; ``adversarial``
    (``{method: pgd, eps: 0.1, steps: 5, mix: 0.5}``) trains on attacked batches
    (``trainlab.tasks.attacked``)."""
    return ClassificationTask(
        loss, label_smoothing, mixup_alpha, cutmix_alpha, tta, loss_options, metrics, adversarial
    )


@register_task("regression")
def regression(
    *,
    loss: str = "mse",
    loss_options: dict[str, Any] = {},  # noqa: B006 - never mutated
    metrics: list[str] = [],  # noqa: B006 - never mutated
) -> RegressionTask:
    """Regression with MSE, L1, Huber or a registered loss (``loss_options``: its options);
    ``metrics``: extra metrics by name (``trainlab list metrics``)."""
    return RegressionTask(loss, loss_options, metrics)
