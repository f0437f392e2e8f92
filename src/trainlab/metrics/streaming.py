"""Streaming (constant-memory) ranking metrics for a run's evaluation, from logits.

``curve_metrics(K)`` gives metrics to add to a task's ``MetricCollection``: one-vs-rest AUROC,
average precision, ROC and PR curves, binned at ``thresholds`` score levels so that no logits
are kept, and top-k accuracy. Every ``compute()`` returns one tensor, so the trainer's
``evaluate`` stores it as a number or a nested list (``eval_test.json``), and the report draws
the curves from there.

Curves come back as a ``(2, K, T)`` tensor: ``[fpr, tpr]`` for ROC, ``[recall, precision]``
for PR, at the thresholds ``curve_thresholds(T)``.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torchmetrics import Metric
from torchmetrics.classification import (
    MulticlassAccuracy,
    MulticlassAUROC,
    MulticlassAveragePrecision,
    MulticlassPrecisionRecallCurve,
    MulticlassROC,
)
from torchmetrics.wrappers import LambdaInputTransformer

__all__ = ["OvrPR", "OvrROC", "curve_metrics", "curve_thresholds"]


def curve_thresholds(t: int) -> Tensor:
    """The ``t`` score thresholds binned curves use: evenly spaced in [0, 1]."""
    return torch.linspace(0, 1, t)


def curve_metrics(
    num_classes: int, *, thresholds: int = 64, top_k: int = 5, curves: bool = True
) -> dict[str, Metric]:
    """Metrics keyed by name (``auroc``, ``ap``, ``roc``, ``pr``, ``acc_top<k>``), fed logits.

    Meant for the test evaluation: ``roc``/``pr`` are ``2*K*T`` numbers each, too many to log
    every epoch. ``acc_top<k>`` is left out when ``k >= K`` (it would always be 1).

    >>> from torchmetrics import MetricCollection
    >>> m = MetricCollection(curve_metrics(3, thresholds=8))
    >>> m.update(torch.randn(16, 3), torch.randint(0, 3, (16,)))
    >>> out = m.compute()
    >>> tuple(out["roc"].shape), out["auroc"].numel()
    ((2, 3, 8), 1)
    """
    k: dict[str, Any] = {"num_classes": num_classes, "validate_args": False}
    binned = {**k, "thresholds": thresholds, "average": "macro"}
    out: dict[str, Metric] = {
        # Softmax made explicit: torchmetrics guesses logits from the value range per batch.
        "auroc": LambdaInputTransformer(MulticlassAUROC(**binned), transform_pred=_softmax),
        "ap": LambdaInputTransformer(MulticlassAveragePrecision(**binned), transform_pred=_softmax),
    }
    if curves:
        out["roc"] = OvrROC(num_classes=num_classes, thresholds=thresholds, validate_args=False)
        out["pr"] = OvrPR(num_classes=num_classes, thresholds=thresholds, validate_args=False)
    if top_k < num_classes:
        out[f"acc_top{top_k}"] = MulticlassAccuracy(top_k=top_k, average="micro", **k)
    return out


def _softmax(logits: Tensor) -> Tensor:
    return logits.float().softmax(dim=1)


class OvrROC(MulticlassROC):
    """Binned one-vs-rest ROC curves from logits; ``compute() -> (2, K, T)`` [fpr, tpr].

    >>> m = OvrROC(num_classes=3, thresholds=5)
    >>> m.update(torch.randn(8, 3), torch.randint(0, 3, (8,)))
    >>> tuple(m.compute().shape)
    (2, 3, 5)
    """

    def update(self, preds: Tensor, target: Tensor) -> None:
        super().update(_softmax(preds), target)

    def compute(self) -> Tensor:  # type: ignore[override]
        fpr, tpr, _ = super().compute()
        # MulticlassROC orders binned thresholds high to low; flip to curve_thresholds' order
        # (low to high) so that ROC and PR curves index thresholds the same way.
        return torch.stack([fpr.flip(-1), tpr.flip(-1)])


class OvrPR(MulticlassPrecisionRecallCurve):
    """Binned one-vs-rest PR curves from logits; ``compute() -> (2, K, T)`` [recall, precision].

    >>> m = OvrPR(num_classes=3, thresholds=5)
    >>> m.update(torch.randn(8, 3), torch.randint(0, 3, (8,)))
    >>> tuple(m.compute().shape)
    (2, 3, 5)
    """

    def update(self, preds: Tensor, target: Tensor) -> None:
        super().update(_softmax(preds), target)

    def compute(self) -> Tensor:  # type: ignore[override]
        precision, recall, _ = super().compute()
        # torchmetrics appends the (recall 0, precision 1) end point: drop it, so that point
        # i belongs to threshold i as for ROC.
        return torch.stack([recall[:, :-1], precision[:, :-1]])
