"""Metrics beyond a task's defaults: top-k accuracy, AUROC, ROC/PR curves, average precision.

``functional`` works on whole prediction sets (scores and targets in memory); ``streaming``
gives constant-memory torchmetrics objects for a run's evaluation loop. The streaming names
load torchmetrics (seconds) on first access only.
"""

from __future__ import annotations

from typing import Any

from trainlab.metrics.functional import (
    Curve,
    auroc,
    average_precision,
    pr_curve,
    roc_curve,
    topk_accuracy,
)

__all__ = [
    "Curve",
    "OvrPR",
    "OvrROC",
    "auroc",
    "average_precision",
    "curve_metrics",
    "curve_thresholds",
    "pr_curve",
    "roc_curve",
    "topk_accuracy",
]

_STREAMING = ("OvrPR", "OvrROC", "curve_metrics", "curve_thresholds")


def __getattr__(name: str) -> Any:  # PEP 562: import torchmetrics only when asked for
    if name in _STREAMING:
        from trainlab.metrics import streaming

        return getattr(streaming, name)
    raise AttributeError(f"module 'trainlab.metrics' has no attribute '{name}'")
