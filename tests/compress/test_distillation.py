"""The ``distillation`` task: soft targets of a teacher run, T² scaling, checked teachers."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file

from trainlab.cli.main import main
from trainlab.deploy import dir_digest
from trainlab.tasks.distillation import distill_loss
from trainlab.tracking.jsonl import read_metrics
from trainlab.train.checkpoint import resolve_checkpoint

STUDENT = """
name: student
seed: 3
data: {name: digits, batch_size: 64}
model: {name: mlp, hidden: [32]}
task: TASK
optim: {name: sgd, lr: 0.1, momentum: 0.9}
train: {epochs: 2, precision: fp32, threads: 1, tensorboard: false, report: false, norms: false,
        log_every: 5}
"""


def test_soft_loss_is_t_squared_kl() -> None:
    s, t = torch.randn(8, 5, requires_grad=True), torch.randn(8, 5)
    T = 3.0
    want = (F.softmax(t / T, -1) * (F.log_softmax(t / T, -1) - F.log_softmax(s / T, -1))).sum(-1)
    assert torch.allclose(distill_loss(s, t, T), want.mean() * T * T, atol=1e-6)
    # T² keeps the gradient's scale comparable across temperatures (≈ (p_s − p_t)·T for large T)
    g = [torch.autograd.grad(distill_loss(s, t, temp), s)[0].norm() for temp in (4.0, 16.0)]
    assert 0.5 < float(g[0] / g[1]) < 8.0


def _train(tmp_path: Path, name: str, task: str) -> tuple[int, Path]:
    recipe = tmp_path / f"{name}.yaml"
    recipe.write_text(STUDENT.replace("TASK", task))
    run = tmp_path / name
    return main(["train", str(recipe), "--run-dir", str(run), "--no-progress"]), run


def test_student_learns_with_the_teacher(digits_run: Path, tmp_path: Path) -> None:
    before = dir_digest(digits_run)
    code, run = _train(tmp_path, "kd", f"{{name: distillation, teacher: {digits_run}, "
                       "temperature: 4.0, alpha: 0.7}")  # fmt: skip
    assert code == 0
    records = read_metrics(run / "metrics.jsonl")
    soft = [r["train/soft_loss"] for r in records if "train/soft_loss" in r]
    assert len(soft) >= 2 and all(v >= 0 for v in soft)
    assert any("val/acc" in r for r in records)
    assert dir_digest(digits_run) == before  # the teacher run is only read


def test_alpha_zero_is_plain_classification_bit_for_bit(digits_run: Path, tmp_path: Path) -> None:
    task = f"{{name: distillation, teacher: {digits_run}, alpha: 0.0}}"
    code_a, kd = _train(tmp_path, "a0", task)
    code_b, plain = _train(tmp_path, "plain", "{name: classification}")
    assert code_a == code_b == 0
    a = load_file(str(resolve_checkpoint(kd, "latest") / "model.safetensors"))
    b = load_file(str(resolve_checkpoint(plain, "latest") / "model.safetensors"))
    assert all(torch.equal(a[k], b[k]) for k in a)  # loading the teacher drew no random numbers


def test_teacher_with_other_classes_is_one_line_exit_2(text_run: Path, tmp_path: Path,
                                                       capsys) -> None:  # fmt: skip
    code, run = _train(tmp_path, "bad", f"{{name: distillation, teacher: {text_run}}}")
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "the teacher's classes (neg, pos) differ" in err[0]
    assert not run.exists()
    code, _ = _train(tmp_path, "bad2", f"{{name: distillation, teacher: {tmp_path / 'none'}}}")
    assert code == 2 and "task.teacher" in capsys.readouterr().err


@pytest.mark.parametrize("opts", ["temperature: 0", "alpha: 1.5"])
def test_bad_options(digits_run: Path, tmp_path: Path, capsys, opts: str) -> None:
    code, _ = _train(tmp_path, "o", f"{{name: distillation, teacher: {digits_run}, {opts}}}")
    assert code == 2 and "task.temperature must be > 0" in capsys.readouterr().err


def test_teacher_logits_are_cached_without_augmentation(digits_run: Path, tmp_path: Path) -> None:
    from trainlab.config.load import load_config
    from trainlab.experiment import build_experiment

    code_c, cached = _train(tmp_path, "c", f"{{name: distillation, teacher: {digits_run}}}")
    code_n, fresh = _train(tmp_path, "n", f"{{name: distillation, teacher: {digits_run}, "
                           "cache_teacher: false}")  # fmt: skip
    assert code_c == code_n == 0
    a = load_file(str(resolve_checkpoint(cached, "latest") / "model.safetensors"))
    b = load_file(str(resolve_checkpoint(fresh, "latest") / "model.safetensors"))
    # cached logits are the teacher's own (up to float rounding of other batch compositions)
    assert all(torch.allclose(a[k], b[k], atol=1e-4) for k in a)
    exp = build_experiment(load_config(cached / "config.yaml"))
    task, loader = exp.task, exp.data.loader("train")
    assert task.cache == {}  # digits without data.augment: cache on
    for epoch in range(2):
        for batch in loader.iter_epoch(epoch):
            task.train_step(exp.model, batch)
    n_train = exp.data.sizes["train"]
    assert task.teacher_rows == len(task.cache) <= n_train  # each sample once, over 2 epochs
    flipped = build_experiment(load_config(cached / "config.yaml", ["data.augment.flip=true"]))
    assert flipped.task.cache is None  # augmented batches differ each epoch: no cache
