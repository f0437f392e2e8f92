"""The ``adversarial`` task: training on attacked batches, refused on token data."""

from __future__ import annotations

from pathlib import Path

import pytest

from after_training_support import REPO, REVIEWS_GRU
from trainlab.cli.main import main
from trainlab.compress.attack import attack_run
from trainlab.tracking.jsonl import read_metrics

RECIPE = """
name: adv
seed: 0
data: {name: digits, batch_size: 64}
model: {name: resnet_small, widths: [8, 16, 16], blocks: [1, 1]}
task: TASK
optim: {name: sgd, lr: 0.1, momentum: 0.9}
train: {epochs: EPOCHS, precision: fp32, threads: 1, tensorboard: false, report: false,
        norms: false, log_every: 5}
"""


def _train(tmp_path: Path, name: str, task: str, epochs: int = 1) -> tuple[int, Path]:
    recipe = tmp_path / f"{name}.yaml"
    recipe.write_text(RECIPE.replace("TASK", task).replace("EPOCHS", str(epochs)))
    run = tmp_path / name
    return main(["train", str(recipe), "--run-dir", str(run), "--no-progress"]), run


@pytest.mark.parametrize("method", ["fgsm", "pgd"])
def test_adversarial_training_logs_both_losses(tmp_path: Path, method: str) -> None:
    code, run = _train(tmp_path, method, f"{{name: adversarial, method: {method}, eps: 0.1, "
                       "steps: 2, mix: 0.5}")  # fmt: skip
    assert code == 0
    records = [r for r in read_metrics(run / "metrics.jsonl") if "train/adv_loss" in r]
    assert records and all(r["train/adv_loss"] >= r["train/clean_loss"] - 0.5 for r in records)


def test_token_data_and_bad_options_are_refused(tmp_path: Path, capsys) -> None:
    code, run = _train(tmp_path, "e", "{name: adversarial, eps: 2.0}")
    assert code == 2
    assert "task.eps: Input should be less than or equal to 1" in capsys.readouterr().err
    assert not run.exists()
    recipe = tmp_path / "text.yaml"
    recipe.write_text(REVIEWS_GRU.replace("REVIEWS", str(REPO / "recipes/data/reviews.csv"))
                      .replace("optim:", "task: {name: adversarial}\noptim:"))  # fmt: skip
    assert main(["train", str(recipe), "--run-dir", str(tmp_path / "t"), "--no-progress"]) == 2
    assert "needs real-valued inputs, not token ids" in capsys.readouterr().err


@pytest.mark.slow
def test_adversarial_training_raises_robust_accuracy(tmp_path: Path) -> None:
    """8 epochs each on digits: PGD accuracy at ε = 0.1 goes from ~0.29 to ~0.70."""
    _, std = _train(tmp_path, "std", "{name: classification}", epochs=8)
    _, adv = _train(tmp_path, "adv", "{name: classification, adversarial: {eps: 0.1, steps: 3}}",
                    epochs=8)
    r_std = attack_run(std, [0.1], steps=10, out=tmp_path / "a1")["rows"][0]
    r_adv = attack_run(adv, [0.1], steps=10, out=tmp_path / "a2")["rows"][0]
    assert r_adv["pgd"] > r_std["pgd"] + 0.2
    assert r_adv["clean"] > 0.9
