"""Ranking metrics on whole prediction sets: top-k accuracy, AUROC, ROC and PR curves, AP.

Thin wrappers over ``torchmetrics.functional.classification`` with one calling convention:
``scores`` of shape ``(N,)`` mean a binary problem (score of the positive class), ``(N, K)``
mean K classes scored one-vs-rest. Scores are probabilities; pass ``logits=True`` to convert
logits first (sigmoid for binary, softmax for K classes). torchmetrics would guess that itself
from the value range, but a guess made per call is fragile when logits happen to lie in [0, 1].

``thresholds=None`` computes exact figures (as scikit-learn does, keeping all scores);
an int ``T`` bins scores at T evenly spaced thresholds in constant memory.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch  # noqa: F401 - the docstring examples use it
from torch import Tensor

__all__ = ["Curve", "topk_accuracy", "auroc", "average_precision", "roc_curve", "pr_curve"]


@dataclass
class Curve:
    """One curve: ``x``/``y`` are (fpr, tpr) for ROC and (recall, precision) for PR."""

    x: Tensor
    y: Tensor
    thresholds: Tensor

    def tolist(self) -> dict[str, list[float]]:
        return {"x": self.x.tolist(), "y": self.y.tolist(), "thresholds": self.thresholds.tolist()}


def _prepare(scores: Tensor, target: Tensor, logits: bool) -> tuple[Tensor, Tensor, int]:
    """Float scores, long targets and the number of classes (0 for binary)."""
    scores, target = scores.detach().float(), target.detach().long()
    if scores.dim() not in (1, 2) or target.dim() != 1 or len(scores) != len(target):
        raise ValueError(
            f"scores must be (N,) or (N, K) and target (N,); got {tuple(scores.shape)} "
            f"and {tuple(target.shape)}"
        )
    if scores.dim() == 1:
        return (scores.sigmoid() if logits else scores), target, 0
    return (scores.softmax(dim=1) if logits else scores), target, scores.shape[1]


def topk_accuracy(scores: Tensor, target: Tensor, k: int = 5) -> float:
    """Fraction of samples whose true class is among the ``k`` highest scores.

    >>> topk_accuracy(torch.tensor([[0.1, 0.5, 0.4], [0.8, 0.05, 0.15]]), torch.tensor([2, 1]), k=2)
    0.5
    """
    from torchmetrics.functional.classification import multiclass_accuracy

    scores, target, k_classes = _prepare(scores, target, logits=False)
    if k_classes == 0 or not 1 <= k <= k_classes:
        raise ValueError(f"topk_accuracy: needs (N, K) scores with 1 <= k <= K; k={k}")
    return float(multiclass_accuracy(scores, target, k_classes, top_k=k, average="micro"))


def auroc(
    scores: Tensor,
    target: Tensor,
    *,
    average: str | None = "macro",
    thresholds: int | None = None,
    logits: bool = False,
) -> Tensor:
    """Area under the ROC curve: binary, or one-vs-rest averaged (``macro``/``weighted``/None).

    >>> float(auroc(torch.tensor([0.1, 0.4, 0.35, 0.8]), torch.tensor([0, 0, 1, 1])))
    0.75
    """
    from torchmetrics.functional.classification import binary_auroc, multiclass_auroc

    scores, target, k = _prepare(scores, target, logits)
    if k == 0:
        return binary_auroc(scores, target, thresholds=thresholds)
    return multiclass_auroc(scores, target, k, average=average, thresholds=thresholds)


def average_precision(
    scores: Tensor,
    target: Tensor,
    *,
    average: str | None = "macro",
    thresholds: int | None = None,
    logits: bool = False,
) -> Tensor:
    """Average precision (area under the PR curve, step-wise as scikit-learn computes it).

    >>> round(float(average_precision(torch.tensor([0.1, 0.4, 0.35, 0.8]),
    ...                                torch.tensor([0, 0, 1, 1]))), 4)
    0.8333
    """
    from torchmetrics.functional.classification import (
        binary_average_precision,
        multiclass_average_precision,
    )

    scores, target, k = _prepare(scores, target, logits)
    if k == 0:
        return binary_average_precision(scores, target, thresholds=thresholds)
    return multiclass_average_precision(scores, target, k, average=average, thresholds=thresholds)


def roc_curve(
    scores: Tensor, target: Tensor, *, thresholds: int | None = None, logits: bool = False
) -> Curve | list[Curve]:
    """The ROC curve (one :class:`Curve`), or one curve per class for ``(N, K)`` scores.

    >>> c = roc_curve(torch.tensor([0.1, 0.4, 0.35, 0.8]), torch.tensor([0, 0, 1, 1]))
    >>> c.x.tolist(), c.y.tolist()
    ([0.0, 0.0, 0.5, 0.5, 1.0], [0.0, 0.5, 0.5, 1.0, 1.0])
    """
    from torchmetrics.functional.classification import binary_roc, multiclass_roc

    scores, target, k = _prepare(scores, target, logits)
    if k == 0:
        return Curve(*binary_roc(scores, target, thresholds=thresholds))
    fpr, tpr, thr = multiclass_roc(scores, target, k, thresholds=thresholds)
    return _per_class(fpr, tpr, thr, k)


def pr_curve(
    scores: Tensor, target: Tensor, *, thresholds: int | None = None, logits: bool = False
) -> Curve | list[Curve]:
    """The precision-recall curve (x: recall, y: precision), per class for ``(N, K)`` scores.

    >>> c = pr_curve(torch.tensor([0.1, 0.4, 0.35, 0.8]), torch.tensor([0, 0, 1, 1]))
    >>> [round(v, 3) for v in c.y.tolist()]
    [0.5, 0.667, 0.5, 1.0, 1.0]
    """
    from torchmetrics.functional.classification import (
        binary_precision_recall_curve,
        multiclass_precision_recall_curve,
    )

    scores, target, k = _prepare(scores, target, logits)
    if k == 0:
        precision, recall, thr = binary_precision_recall_curve(scores, target, thresholds)
        return Curve(recall, precision, thr)
    precision, recall, thr = multiclass_precision_recall_curve(scores, target, k, thresholds)
    return _per_class(recall, precision, thr, k)


def _per_class(x: Tensor | list, y: Tensor | list, thr: Tensor | list, k: int) -> list[Curve]:
    # Exact curves come back as lists (one length per class); binned ones as (K, T) tensors
    # sharing one threshold vector (T,).
    if isinstance(thr, Tensor) and thr.dim() == 1 and isinstance(x, Tensor) and x.dim() == 2:
        return [Curve(x[i], y[i], thr) for i in range(k)]
    return [Curve(x[i], y[i], thr[i]) for i in range(k)]
