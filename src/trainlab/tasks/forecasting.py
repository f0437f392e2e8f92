"""Forecasting: predict the next ``horizon`` values of one or more series from a window.

``regression`` handles one number per sample; forecasting targets are ``y`` (N, horizon,
targets) from ``csv_windows`` (or (N,) from ``seq_task`` sine), while the registered
forecasters (``lstm_regressor``, ``gru_regressor``, ``rnn_regressor``, ``mlp``) return a flat
(N, num_outputs). This task lays the flat output out as the target's shape, so one recipe key
(``model.num_outputs = horizon × targets``) is all a user sets.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from trainlab.errors import ConfigError
from trainlab.metrics.registry import build_metric
from trainlab.tasks.base import StepOutput, register_task
from trainlab.tasks.losses import get_loss

if TYPE_CHECKING:
    from torchmetrics import MetricCollection

__all__ = ["ForecastingTask", "forecasting"]

Batch = tuple[torch.Tensor, torch.Tensor]


class ForecastingTask:
    """Sequence regression: predictions reshaped to the targets, metrics over all horizons.

    >>> task = ForecastingTask("mse")
    >>> model = nn.Sequential(nn.Flatten(), nn.Linear(8 * 2, 3 * 1))
    >>> out = task.train_step(model, (torch.randn(4, 8, 2), torch.randn(4, 3, 1)))
    >>> out.loss.shape
    torch.Size([])
    """

    def __init__(
        self,
        loss: str = "mse",
        loss_options: dict[str, Any] | None = None,
        metrics: list[str] | None = None,
    ) -> None:
        # Built-in regression losses or any registered loss (on the reshaped predictions).
        self.loss_fn = get_loss(loss, options=loss_options, kind="regression")
        self.extra_metrics = list(metrics or [])

    @staticmethod
    def align(pred: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """``pred`` (N, horizon·targets) → ``y``'s shape, e.g. (N, horizon, targets) or (N,)."""
        if pred.numel() != y.numel():  # shapes are host metadata: no device sync
            per = math.prod(y.shape[1:])
            raise ConfigError(
                f"task forecasting: the model predicts {tuple(pred.shape[1:])} values per window "
                f"but the data has {tuple(y.shape[1:])} targets; set model.num_outputs: {per}"
            )
        return pred.reshape(y.shape)

    def train_step(self, model: nn.Module, batch: Batch) -> StepOutput:
        x, y = batch  # x (N, window, F), y (N, horizon, T)
        pred = self.align(model(x), y)
        return StepOutput(self.loss_fn(pred, y, 0.0))

    def eval_step(self, model: nn.Module, batch: Batch) -> StepOutput:
        x, y = batch
        pred = self.align(model(x).float(), y)
        # Metrics see one column per (horizon step, target): R² averages over the columns.
        n = len(y)
        return StepOutput(self.loss_fn(pred, y, 0.0), pred.reshape(n, -1), y.float().reshape(n, -1))

    def metrics(self, num_classes: int | None) -> MetricCollection:
        from torchmetrics import MetricCollection
        from torchmetrics.regression import MeanAbsoluteError, MeanSquaredError, R2Score

        return MetricCollection(
            {
                "mae": MeanAbsoluteError(),
                "mse": MeanSquaredError(),
                "rmse": MeanSquaredError(squared=False),
                "r2": R2Score(multioutput="uniform_average"),
                **{name: build_metric(name, num_classes) for name in self.extra_metrics},
            }
        )


@register_task("forecasting")
def forecasting(
    *,
    loss: str = "mse",
    loss_options: dict[str, Any] = {},  # noqa: B006 - never mutated
    metrics: list[str] = [],  # noqa: B006 - never mutated
) -> ForecastingTask:
    """Multi-step, multi-series forecasting (``csv_windows``, ``seq_task`` sine): the model's
    flat output (N, horizon·targets) is compared with ``y`` (N, horizon, targets). ``loss``:
    mse, l1, huber or a registered loss (``loss_options``: its options); ``metrics``: extra
    metrics by name (``trainlab list metrics``)."""
    return ForecastingTask(loss, loss_options, metrics)
