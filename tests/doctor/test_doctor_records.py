"""`doctor RUN_DIR`: each run rule on a hand-written run showing its symptom."""

from __future__ import annotations

import hashlib
import math
from pathlib import Path

import pytest
from doctor_support import healthy, write_run

from trainlab.doctor import doctor
from trainlab.doctor.model_checks import DoctorInputError
from trainlab.errors import TrainlabError


def _causes(path: Path) -> list[str]:
    return [f.cause for f in doctor(path).warnings]


def test_healthy_run_has_no_warning(tmp_path: Path) -> None:
    diag = doctor(healthy(tmp_path / "r"))
    assert diag.warnings == [], [f.symptom for f in diag.warnings]


def test_nan_loss_is_divergence_with_lr_fix(tmp_path: Path) -> None:
    steps = [2.3, 2.1, 1.9, 5.0, 40.0, math.nan]
    run = healthy(tmp_path / "r", step_loss=steps,
                  summary={"stop_reason": "non-finite loss in steps 26-30"})  # fmt: skip
    diag = doctor(run)
    top = diag.top
    assert top is not None and top.cause == "lr_too_high" and top.severity == "error"
    assert top.evidence["step"] == 30
    assert "optim.lr=0.005" in top.fix and "train.grad_clip=1.0" in top.fix


def test_overfitting_names_the_epoch_the_gap_opened(tmp_path: Path) -> None:
    n = 12
    tl = [1.5 * 0.7**e for e in range(n)]
    vl = [1.0, 0.7, 0.55, 0.5, 0.52, 0.56, 0.6, 0.66, 0.7, 0.75, 0.8, 0.85]
    ta = [min(1.0, 0.6 + 0.06 * e) for e in range(n)]
    va = [0.6, 0.7, 0.75, 0.77, 0.78, 0.78, 0.78, 0.77, 0.77, 0.77, 0.77, 0.77]
    run = healthy(tmp_path / "r", train_loss=tl, val_loss=vl, train_acc=ta, val_acc=va,
                  test_acc=0.77, test_loss=0.8)  # fmt: skip
    diag = doctor(run)
    assert diag.top is not None and diag.top.cause == "overfitting"
    assert diag.top.evidence["best_val_loss_epoch"] == 4
    assert diag.top.evidence["gap_opened_epoch"] == 5  # train 0.84 vs val 0.78


def test_validation_at_chance_while_training_loss_falls_is_no_signal(tmp_path: Path) -> None:
    n = 8
    run = healthy(tmp_path / "r", train_loss=[2.3 - 0.1 * e for e in range(n)],
                  val_loss=[2.31 + 0.02 * e for e in range(n)],
                  train_acc=[0.1 + 0.05 * e for e in range(n)], val_acc=[0.1] * n,
                  step_loss=[2.3 - 0.02 * i for i in range(30)], test_acc=0.1,
                  test_loss=2.4)  # fmt: skip
    assert _causes(run)[0] == "no_label_signal"


def test_flat_loss_with_unmoving_weights_is_lr_too_low(tmp_path: Path) -> None:
    n = 8
    norms = [{"step": 10 * i, "epoch": 0, "weight": {"a": 5.0 + 1e-4 * i, "b": 2.0},
              "grad": {"a": 0.1, "b": 0.1}} for i in range(6)]  # fmt: skip
    run = healthy(tmp_path / "r", train_loss=[2.3 - 0.005 * e for e in range(n)],
                  val_loss=[2.3 - 0.005 * e for e in range(n)],
                  train_acc=[0.25] * n, val_acc=[0.25] * n,
                  step_loss=[2.3 - 0.001 * i for i in range(30)], norms=norms,
                  config={"optim": {"name": "sgd", "lr": 1e-5}})  # fmt: skip
    diag = doctor(run)
    assert diag.top is not None and diag.top.cause == "lr_too_low"
    assert diag.top.fix == ["optim.lr=0.05"]


def test_vanishing_gradients_from_norms(tmp_path: Path) -> None:
    norms = [{"step": 10 * i, "epoch": 0, "weight": {"first": 5.0, "mid": 3.0, "last": 2.0},
              "grad": {"first": 1e-7, "mid": 1e-4, "last": 0.2}} for i in range(6)]  # fmt: skip
    diag = doctor(healthy(tmp_path / "r", norms=norms))
    assert diag.top is not None and diag.top.cause == "vanishing_gradients"
    assert diag.top.evidence["first_layer"] == "first"


def test_imbalanced_classes_judged_by_accuracy(tmp_path: Path) -> None:
    cm = [[250, 0], [12, 1]]
    run = healthy(tmp_path / "r", confusion=cm, per_class=[1.0, 1 / 13],
                  config={"model": {"name": "mlp", "num_classes": 2}})  # fmt: skip
    diag = doctor(run)
    assert diag.top is not None and diag.top.cause == "class_imbalance"
    assert "train.monitor=val/f1" in diag.top.fix
    assert "failing_classes" in [f.cause for f in diag.warnings]


def test_validation_better_than_test_is_leakage(tmp_path: Path) -> None:
    n = 10
    tl = [2.0 * math.exp(-0.5 * e) + 0.02 for e in range(n)]
    run = healthy(tmp_path / "r", train_loss=tl, val_loss=[x * 0.9 for x in tl],
                  train_acc=[min(0.995, 0.6 + 0.05 * e) for e in range(n)],
                  val_acc=[min(1.0, 0.6 + 0.05 * e) for e in range(n)], test_acc=0.93,
                  test_loss=0.25)  # fmt: skip
    assert _causes(run)[0] == "leakage"


def test_early_stop_is_a_note_not_a_warning(tmp_path: Path) -> None:
    run = healthy(tmp_path / "r", summary={"stop_reason": "early stopping: val/acc did not "
                                           "improve for 3 epochs (best 0.95)"})  # fmt: skip
    diag = doctor(run)
    assert diag.warnings == []
    assert "early_stopped" in [f.cause for f in diag.findings]


def test_the_run_directory_is_not_modified(tmp_path: Path) -> None:
    run = healthy(tmp_path / "r")
    before = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in run.iterdir()}
    doctor(run)
    after = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in run.iterdir()}
    assert before == after


def test_folder_without_records_is_one_line_error(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(TrainlabError, match="not a run directory"):
        doctor(tmp_path / "empty")
    run = tmp_path / "cfg_only"
    run.mkdir()
    (run / "config.yaml").write_text("name: x\n")
    with pytest.raises(DoctorInputError, match="no training records"):
        doctor(run)


def test_overrides_are_refused_for_a_run(tmp_path: Path) -> None:
    with pytest.raises(TrainlabError, match="no overrides"):
        doctor(healthy(tmp_path / "r"), ["optim.lr=0.1"])


def test_write_run_helper_matches_what_train_writes(tmp_path: Path) -> None:
    run = write_run(tmp_path / "r", train_loss=[1.0, 0.5], val_loss=[1.0, 0.6],
                    train_acc=[0.5, 0.8], val_acc=[0.5, 0.7])  # fmt: skip
    assert {p.name for p in run.iterdir()} >= {"config.yaml", "metrics.jsonl", "summary.json"}


def test_a_gan_generator_loss_that_rises_is_not_divergence(tmp_path: Path) -> None:
    rising = [0.7 + 0.2 * i for i in range(30)]  # the discriminator gets better
    run = healthy(tmp_path / "r", step_loss=rising, config={"task": {"name": "gan"}})
    assert doctor(run).warnings == []
    run = healthy(tmp_path / "c", step_loss=rising)  # the same curve for a classifier
    assert _causes(run)[0] == "lr_too_high"


def test_overfitting_on_a_five_sample_validation_is_only_a_note(tmp_path: Path) -> None:
    n = 12
    tl = [1.5 * 0.7**e for e in range(n)]
    vl = [1.0, 0.7, 0.55, 0.5, 0.52, 0.56, 0.6, 0.66, 0.7, 0.75, 0.8, 0.85]
    ta = [min(1.0, 0.6 + 0.06 * e) for e in range(n)]
    run = healthy(tmp_path / "r", train_loss=tl, val_loss=vl, train_acc=ta, val_acc=[0.8] * n,
                  confusion=[[3, 0], [1, 1]], config={"model": {"name": "mlp", "num_classes": 2}},
                  test_acc=0.8, test_loss=0.8)  # fmt: skip
    diag = doctor(run)
    assert diag.warnings == []
    assert [f.severity for f in diag.findings if f.cause == "overfitting"] == ["info"]
