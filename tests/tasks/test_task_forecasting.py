"""forecasting: multi-step forecasts beat persistence; flat outputs are laid out as targets."""

from __future__ import annotations

import math
import random

import pytest
import torch
from torch import nn

from trainlab.errors import ConfigError
from trainlab.experiment import build_data
from trainlab.tasks.forecasting import ForecastingTask

FORECAST = """
name: forecast
seed: 0
data: {name: csv_windows, path: SERIES, columns: [load], window: 16, horizon: 4, batch_size: 32}
model: {name: gru_regressor, input_size: 1, hidden: 24, num_outputs: 4}
task: {name: forecasting}
optim: {name: adam, lr: 0.01}
train: {epochs: 8, log_every: 10, precision: fp32, monitor: val/mse, monitor_mode: min}
"""


def write_series(path, n: int = 600) -> None:
    """A noisy oscillation (period 12 steps): smooth enough to forecast, not to persist."""
    rng = random.Random(0)
    rows = ["t,load"] + [
        f"{t},{math.sin(2 * math.pi * t / 12) + 0.1 * rng.gauss(0, 1):.4f}" for t in range(n)
    ]
    path.write_text("\n".join(rows) + "\n")


def persistence_mse(series_path: str) -> float:
    """Test-split MSE of repeating the window's last value over the horizon."""
    data = build_data("csv_windows", path=series_path, columns=["load"], window=16, horizon=4)
    data.setup(torch.device("cpu"))
    x, y = data.splits["test"]  # x (N, 16, 1), y (N, 4, 1), standardised
    return float((x[:, -1:, :].expand_as(y) - y).pow(2).mean())


def test_forecasts_beat_persistence(run_recipe, tmp_path) -> None:
    series = tmp_path / "series.csv"
    write_series(series)
    summary, _ = run_recipe(FORECAST.replace("SERIES", str(series)))
    baseline = persistence_mse(str(series))  # ≈ 1.6 (trained: ≈ 0.02)
    test = summary["test"]
    assert test["test/mse"] < 0.3 * baseline, (test, baseline)
    assert test["test/r2"] > 0.7
    assert test["test/rmse"] == pytest.approx(math.sqrt(test["test/mse"]), rel=1e-4)


def test_flat_predictions_take_the_target_shape() -> None:
    task = ForecastingTask("l1")
    model = nn.Sequential(nn.Flatten(), nn.Linear(5 * 2, 3 * 2))
    x, y = torch.randn(4, 5, 2), torch.randn(4, 3, 2)
    out = task.eval_step(model, (x, y))
    assert out.preds.shape == out.target.shape == (4, 6)
    expected = (model(x).reshape(4, 3, 2) - y).abs().mean()
    assert torch.allclose(out.loss, expected)
    # seq_task sine: one next value per window, (N, 1) predictions against (N,) targets.
    scalar = ForecastingTask().train_step(nn.Linear(2, 1), (torch.randn(4, 2), torch.randn(4)))
    assert scalar.loss.dim() == 0


def test_output_size_mismatch_names_the_fix() -> None:
    with pytest.raises(ConfigError, match="num_outputs: 8"):
        ForecastingTask().train_step(nn.Linear(3, 5), (torch.randn(2, 3), torch.randn(2, 4, 2)))
