"""The `doctor` callback warns during training; report.html carries a Diagnosis section."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from trainlab.callbacks.base import CALLBACKS
from trainlab.config.load import parse_config
from trainlab.doctor.callback import DoctorCallback, DoctorWarning

RECIPE = {
    "name": "cb", "seed": 0,
    "data": {"name": "synthetic", "num_classes": 4, "shape": [1, 8, 8], "n_train": 256,
             "batch_size": 32},
    "model": {"name": "mlp", "hidden": [32]},
    "optim": {"name": "sgd", "lr": 0.05, "momentum": 0.9},
    "train": {"epochs": 3, "log_every": 2, "tensorboard": False, "threads": 1},
    "callbacks": [{"name": "doctor", "every": 2}],
}  # fmt: skip


def test_registered_for_recipes() -> None:
    assert CALLBACKS.get("doctor") is DoctorCallback


def test_exploding_lr_warns_during_training(tmp_path: Path) -> None:
    from trainlab.errors import TrainlabError
    from trainlab.run import train_run

    quick = {"epochs": 1, "max_steps": 8, "log_every": 2, "tensorboard": False, "threads": 1,
             "checkpoint": False, "report": False, "eval_test": False}  # fmt: skip
    cfg = parse_config(
        {**RECIPE, "optim": {"name": "sgd", "lr": 30.0, "momentum": 0.9}, "train": quick}
    )
    with pytest.warns(DoctorWarning, match="LR") as record:
        try:
            train_run(cfg, run_dir=tmp_path / "run", progress=False)
        except TrainlabError:
            pass  # the run diverges and stops: the warning came first
    assert any("climbed far above" in str(w.message) or "non-finite" in str(w.message)
               for w in record)  # fmt: skip
    saved = json.loads((tmp_path / "run" / "warnings.json").read_text())["warnings"]
    assert any(w["category"] == "DoctorWarning" for w in saved)


def test_healthy_training_stays_silent_and_report_has_a_diagnosis(tmp_path: Path) -> None:
    import warnings

    from trainlab.run import train_run

    with warnings.catch_warnings():
        warnings.simplefilter("error", DoctorWarning)
        train_run(parse_config(RECIPE), run_dir=tmp_path / "run", progress=False)
    html = (tmp_path / "run" / "report.html").read_text()
    assert "<h2>Diagnosis</h2>" in html


def test_plateau_and_overfitting_rules_fire_once() -> None:
    from types import SimpleNamespace

    cb = DoctorCallback(patience=2)
    state = SimpleNamespace(metrics={}, step=0)
    fired = []
    for val, train in [(1.0, 1.0), (0.8, 0.8), (0.9, 0.6), (1.0, 0.5), (1.1, 0.4)]:
        state.metrics = {"val/loss": val, "train/loss_epoch": train}
        with warnings_caught() as w:
            cb.on_validation_end(state)
        fired += [str(x.message) for x in w]
    assert set(cb.fired) == {"plateau", "overfitting"}
    assert len(fired) == 2


def warnings_caught():  # type: ignore[no-untyped-def]
    import warnings

    ctx = warnings.catch_warnings(record=True)
    warnings.simplefilter("always")
    return ctx


def test_gradient_explosion_from_step_grads() -> None:
    from types import SimpleNamespace

    model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Linear(4, 2))
    cb = DoctorCallback(every=1)
    state = SimpleNamespace(model=model, step=0)
    cb.on_fit_start(state)
    import warnings

    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        for step, scale in enumerate([1.0, 1.0, 1.0, 1.0, 1000.0], 1):
            model.zero_grad()
            (model(torch.ones(3, 4)).sum() * scale).backward()
            state.step = step
            cb.on_batch_end(state)
    assert "exploding" in cb.fired
    assert any("running median" in str(x.message) for x in w)
