"""Streaming top-k selection of per-example losses: equal to sorting the whole split."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from trainlab.config.load import parse_config
from trainlab.reports import build_report, interpret
from trainlab.run import train_run
from trainlab.tasks.classification import ClassificationTask, RegressionTask
from trainlab.tracking.top_losses import TopLosses


def test_streaming_selection_equals_a_full_sort() -> None:
    g = torch.Generator().manual_seed(0)
    logits, y = torch.randn(300, 5, generator=g), torch.randint(0, 5, (300,), generator=g)
    x = torch.randn(300, 7, generator=g)  # tabular rows: features are kept
    rec = TopLosses.for_task(ClassificationTask(), k=10)
    assert rec is not None
    for i in range(0, 300, 64):  # uneven last batch
        rec.update(x[i : i + 64], logits[i : i + 64], y[i : i + 64])
    want = F.cross_entropy(logits, y, reduction="none").topk(10)
    rows = rec.rows(names=list("abcde"))
    assert [r["index"] for r in rows] == want.indices.tolist()
    assert [r["loss"] for r in rows] == pytest.approx(want.values.tolist())
    i = rows[0]["index"]
    assert rows[0]["features"] == pytest.approx(x[i, :8].tolist())
    assert rows[0]["pred"] == int(logits[i].argmax())
    assert rows[0]["target_name"] == "abcde"[int(y[i])]


def test_regression_and_non_finite_predictions() -> None:
    rec = TopLosses.for_task(RegressionTask(), k=3)
    assert rec is not None and TopLosses.for_task(object()) is None
    pred = torch.tensor([0.0, 1.0, float("nan"), 3.0, 10.0])
    rec.update(torch.zeros(5, 2), pred[:3], torch.zeros(3))
    rec.update(torch.zeros(2, 2), pred[3:], torch.zeros(2))
    rows = rec.rows()
    assert [r["index"] for r in rows] == [2, 4, 3]  # a NaN prediction is the worst of all
    assert rows[1]["error"] == 10.0 and rows[1]["loss"] == 100.0


def test_tabular_regression_run_has_a_top_loss_table(tmp_path: Path) -> None:
    cfg = {
        "name": "diabetes",
        "data": {"name": "diabetes"},
        "model": {"name": "mlp", "hidden": [8], "num_classes": 1},  # one output
        "task": {"name": "regression"},
        "optim": {"name": "adam", "lr": 0.01},
        "train": {"epochs": 1, "monitor": "val/loss", "monitor_mode": "min", "log_every": 5,
                  "tensorboard": False, "report": False},
    }  # fmt: skip
    run = tmp_path / "run"
    train_run(parse_config(cfg), run_dir=run, progress=False)
    top = json.loads((run / "top_losses_test.json").read_text())
    assert top["kind"] == "regression" and not top["images"]
    losses = [r["loss"] for r in top["rows"]]
    assert losses == sorted(losses, reverse=True)
    assert all(r["loss"] == pytest.approx(r["error"] ** 2, rel=1e-5) for r in top["rows"])
    assert len(top["rows"][0]["features"]) == 8  # of diabetes' 10 features
    assert not (run / "top_losses_test.safetensors").exists()
    html = build_report(run).read_text()
    assert "Top losses" in html and "squared error" in html and "features (first)" in html
    assert interpret(run).confusion is None and len(interpret(run).top_losses(2)) == 2
