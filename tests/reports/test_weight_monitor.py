"""The weight monitor: per-layer weight and gradient norms, from Python and from recipes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from reports_support import TINY
from torch import nn

from trainlab.callbacks import CALLBACKS, WeightMonitor
from trainlab.callbacks.weight_monitor import layer_norms
from trainlab.config.load import parse_config
from trainlab.reports.insight import read_norms
from trainlab.run import train_run
from trainlab.train.state import TrainState


def test_gradient_norms_survive_the_loop_freeing_them() -> None:
    model = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    state = TrainState(model=model, optimizer=torch.optim.SGD(model.parameters(), lr=0.1))
    wm = WeightMonitor(every=1)
    wm.on_fit_start(state)  # no run directory: records kept in memory only
    model(torch.randn(5, 4)).square().sum().backward()
    want = {
        "0": torch.cat([model[0].weight.grad.flatten(), model[0].bias.grad]).norm().item(),
        "2": torch.cat([model[2].weight.grad.flatten(), model[2].bias.grad]).norm().item(),
    }
    model.zero_grad(set_to_none=True)  # as the loop does before on_batch_end
    state.step = 1
    wm.on_batch_end(state)
    wm.on_fit_end(state)
    assert [r["step"] for r in wm.records] == [0, 1]
    assert wm.records[1]["grad"] == pytest.approx(want, rel=1e-6)
    w0 = torch.cat([model[0].weight.flatten(), model[0].bias]).norm().item()
    assert wm.records[1]["weight"]["0"] == pytest.approx(w0, rel=1e-6)
    assert layer_norms(model)[1] == {}  # the loop freed .grad: only the monitor kept it


def test_recipe_monitor_replaces_the_default(tmp_path: Path) -> None:
    assert CALLBACKS.get("weight_monitor") is WeightMonitor
    cfg = {
        **TINY,
        "train": {**TINY["train"], "epochs": 1, "tensorboard": False, "checkpoint": False},
        "callbacks": [{"name": "weight_monitor", "every": 1}],
    }
    train_run(parse_config(cfg), run_dir=tmp_path / "run", progress=False)
    steps = [json.loads(line)["step"] for line in (tmp_path / "run" / "norms.jsonl").open()]
    assert steps == [0, 1, 2, 3]  # every step, once: the default monitor (every 2) is not added


def test_norms_off_and_resume_truncation(tmp_path: Path) -> None:
    cfg = {**TINY, "train": {**TINY["train"], "epochs": 1, "tensorboard": False}}
    off = {**cfg, "train": {**cfg["train"], "norms": False}}
    train_run(parse_config(off), run_dir=tmp_path / "off", progress=False)
    assert not (tmp_path / "off" / "norms.jsonl").exists()
    run = tmp_path / "run"
    monitored = {**cfg, "train": {**cfg["train"], "hist_every": 1}}
    train_run(parse_config(monitored), run_dir=run, progress=False)
    with open(run / "norms.jsonl", "a") as f:  # what a crash after the checkpoint leaves
        f.write(json.dumps({"step": 4, "epoch": 1, "weight": {}, "grad": {}}) + "\n")
    train_run(None, ["train.epochs=2"], resume=run, progress=False)
    steps = [json.loads(line)["step"] for line in (run / "norms.jsonl").open()]
    assert steps == list(range(7))  # 0-3, then 4-6 once: the stale step 4 was dropped
    assert read_norms(run)[4]["weight"]  # the real record, not the stale one


def test_monitor_leaves_training_unchanged(tmp_path: Path) -> None:
    # Dropout draws random numbers and batch norm updates statistics: a monitor that touched
    # either (or the gradients) would change the final weights.
    from trainlab.experiment import build_experiment

    cfg = {
        **TINY,
        "model": {"name": "mlp", "hidden": [16], "norm": "batch", "dropout": 0.3},
        "train": {**TINY["train"], "epochs": 1, "grad_clip": 0.5},
    }
    finals = []
    for callbacks in ([], [WeightMonitor(every=1, path=str(tmp_path / "n.jsonl"))]):
        exp = build_experiment(parse_config(cfg), callbacks=callbacks)
        exp.trainer.fit(exp.model, exp.task, exp.data, exp.optimizer, exp.schedule)
        finals.append(exp.model.state_dict())
    for k in finals[0]:
        assert torch.equal(finals[0][k], finals[1][k]), k
    grads = [json.loads(line)["grad"] for line in (tmp_path / "n.jsonl").open()]
    assert len(grads) == 4 and all(g for g in grads[1:])
    # Clipping happens before on_batch_end: the monitor sees the clipped gradient.
    assert all(sum(v * v for v in g.values()) ** 0.5 <= 0.5 + 1e-5 for g in grads[1:])
