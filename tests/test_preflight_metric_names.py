"""Preflight names the classification metrics without building them, so that torchmetrics is
imported at the first validation, not before the first training step; the checks it makes
before training stay the same."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from trainlab.tasks.base import StepOutput
from trainlab.tasks.classification import ClassificationTask


def out(preds: torch.Tensor, target: torch.Tensor) -> StepOutput:
    return StepOutput(torch.zeros(()), preds, target)


def test_names_are_the_keys_of_the_metrics() -> None:
    task = ClassificationTask()
    names = task.metric_names(10, out(torch.randn(4, 10), torch.tensor([0, 9, 3, 3])))
    assert names == list(task.metrics(10).keys())


@pytest.mark.parametrize(
    ("task", "preds", "target"),
    [
        (
            ClassificationTask(metrics=["MulticlassCohenKappa"]),
            torch.randn(4, 3),
            torch.arange(4) % 3,
        ),
        (ClassificationTask(loss="bce"), torch.randn(4, 3), torch.arange(4) % 3),
        (ClassificationTask(), torch.randn(4), torch.arange(4) % 3),  # not (N, K)
        (ClassificationTask(), torch.randn(4, 5), torch.arange(4) % 3),  # K is not the classes
        (ClassificationTask(), torch.randn(4, 3), torch.tensor([0, 1, 2, 3])),  # label 3 of 0..2
        (ClassificationTask(), torch.randn(4, 3), torch.rand(4)),  # float targets
        (ClassificationTask(), torch.randn(4, 3), torch.zeros(4, 3, dtype=torch.long)),
    ],
)
def test_names_declined_where_the_metrics_must_score_the_batch(
    task: ClassificationTask, preds: torch.Tensor, target: torch.Tensor
) -> None:
    assert task.metric_names(3, out(preds, target)) is None


RECIPE = """
name: deferred
seed: 0
data: {name: synthetic, num_classes: 3, shape: [1, 6, 6], n_train: 64, n_val: 32, n_test: 32,
       batch_size: 32}
model: {name: mlp, hidden: [16]}
optim: {name: sgd, lr: 0.05}
train: {epochs: 1, threads: 1, tensorboard: false, report: false, eval_test: false,
        monitor: val/f1}
"""

CHILD = """
import json, sys
from trainlab.run import train_run

seen = {}

class Watch:
    def on_batch_end(self, state):
        seen.setdefault("first_step", "torchmetrics" in sys.modules)
    def on_validation_end(self, state):
        seen["validation"] = "torchmetrics" in sys.modules
        seen["f1"] = state.metrics["val/f1"]

train_run(sys.argv[1], run_dir=sys.argv[2], progress=False, extra_callbacks=[Watch()])
print(json.dumps(seen))
"""


def test_first_step_runs_before_torchmetrics_is_imported(tmp_path: Path) -> None:
    recipe = tmp_path / "deferred.yaml"
    recipe.write_text(RECIPE)
    proc = subprocess.run([sys.executable, "-c", CHILD, str(recipe), str(tmp_path / "run")],
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    seen = json.loads(proc.stdout.strip().splitlines()[-1])
    assert seen["first_step"] is False and seen["validation"] is True
    assert 0.0 <= seen["f1"] <= 1.0
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["best"]["monitor"] == "val/f1"


def test_a_misnamed_monitor_still_fails_before_training(tmp_path: Path) -> None:
    recipe = tmp_path / "deferred.yaml"
    recipe.write_text(RECIPE.replace("monitor: val/f1", "monitor: val/f2"))
    proc = subprocess.run([sys.executable, "-m", "trainlab", "train", str(recipe),
                           "--run-dir", str(tmp_path / "run")],
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert proc.returncode == 2
    assert "'val/f2'" in proc.stderr and "val/f1" in proc.stderr
    assert not (tmp_path / "run" / "metrics.jsonl").exists()
