"""`doctor RECIPE`: pre-flight rules on the broken case recipes (fast ones) and bad input."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from doctor_support import CASES

from trainlab.doctor import doctor
from trainlab.doctor.model_checks import DoctorInputError
from trainlab.errors import ConfigError

QUICK = ("lr", "overfit", "machine")  # what these tests leave out to stay fast


def _top(case: str, skip: tuple[str, ...] = QUICK, overrides: list[str] | None = None) -> str:
    diag = doctor(CASES / f"{case}.yaml", overrides, skip=skip)
    assert diag.warnings, f"{case}: nothing found"
    return diag.warnings[0].cause


@pytest.mark.parametrize(
    ("case", "cause"),
    [
        ("unnormalized", "unnormalized_inputs"),
        ("leakage", "leakage"),
        ("imbalance", "class_imbalance"),
        ("wrong_backward", "wrong_backward"),
        ("deep_sigmoid", "vanishing_gradients"),
        ("threads", "thread_oversubscription"),
    ],
)
def test_case_ranks_its_cause_first(case: str, cause: str) -> None:
    assert _top(case) == cause


def test_lr_range_test_flags_a_too_high_and_a_too_low_lr() -> None:
    assert _top("lr_too_high", skip=("machine",)) == "lr_too_high"
    diag = doctor(CASES / "lr_too_low.yaml", skip=("machine",))
    top = diag.warnings[0]
    assert top.cause == "lr_too_low" and top.fix[0].startswith("optim.lr=")
    assert float(top.fix[0].split("=")[1]) > 100 * 2e-5


def test_shuffled_labels_fit_one_batch_but_no_lr_helps() -> None:
    assert _top("shuffled_labels", skip=("machine",)) == "no_label_signal"


def test_healthy_recipe_has_no_warning_and_threads_are_restored() -> None:
    threads = torch.get_num_threads()
    diag = doctor(CASES / "threads.yaml", ["train.threads=1"])
    assert diag.warnings == [], [f.symptom for f in diag.warnings]
    assert {"data", "model", "gradcheck", "overfit", "lr", "machine"} <= set(diag.checks)
    assert torch.get_num_threads() == threads
    doctor(CASES / "threads.yaml", skip=QUICK)  # asks for 64 threads
    assert torch.get_num_threads() == threads


def test_model_weights_are_untouched_by_the_checks(recipe: Path) -> None:
    from trainlab.config.load import load_config
    from trainlab.doctor.preflight import _Runner
    from trainlab.experiment import build_experiment

    cfg = load_config(CASES / "lr_too_high.yaml")
    exp = build_experiment(cfg)
    before = {k: v.clone() for k, v in exp.model.state_dict().items()}
    runner = _Runner(exp, cfg, (), {}, {})
    runner.run_all(lr_steps=20, overfit_steps=30)
    after = exp.model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_forward_that_fails_on_the_data_shape_is_one_line(recipe: Path) -> None:
    with pytest.raises(DoctorInputError, match="forward fails on a batch of shape 64x1x8x8"):
        doctor(CASES / "threads.yaml", ["model.in_features=10"], skip=QUICK)


def test_recipe_that_does_not_validate() -> None:
    with pytest.raises(ConfigError, match="unknown model"):
        doctor(CASES / "threads.yaml", ["model.name=mlq"])


def test_dead_relu_layer_and_wrong_output_shape_from_one_probe() -> None:
    from torch import nn

    from trainlab.doctor.model_checks import check_model, probe
    from trainlab.tasks.classification import ClassificationTask

    model = nn.Sequential(nn.Flatten(), nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 3))
    with torch.no_grad():
        model[1].bias.fill_(-100.0)  # every unit negative for every input: dead
    batch = (torch.randn(32, 8), torch.randint(0, 3, (32,)))
    p = probe(model, ClassificationTask(), batch)
    assert p.dead["2"] == 1.0
    causes = {f.cause: f.severity for f in check_model(p, num_classes=3, classify=True)}
    assert causes["dead_relu"] == "warning"
    wrong = {f.cause for f in check_model(p, num_classes=5, classify=True)}
    assert "bad_output_shape" in wrong


def test_a_correct_custom_backward_passes_the_gradient_check() -> None:
    diag = doctor(CASES / "wrong_backward.yaml", ["model.wrong_backward=false"], skip=QUICK)
    assert diag.warnings == []
    passed = [f for f in diag.findings if f.cause == "gradcheck_passed"]
    assert passed and passed[0].evidence["checked"] == 1


def test_tiny_init_in_a_deep_relu_mlp_is_a_vanishing_signal() -> None:
    deep = ["model.hidden=[64,64,64,64,64,64]", "model.init=normal", "train.threads=1"]
    small = doctor(CASES / "threads.yaml", [*deep, "model.init_std=0.01"], skip=QUICK)
    assert small.warnings[0].cause == "vanishing_signal"
    assert small.warnings[0].evidence["ratio"] < 1e-4
    fine = doctor(CASES / "threads.yaml", ["train.threads=1"], skip=QUICK)
    assert not [f for f in fine.findings if f.rule == "model.signal"]
