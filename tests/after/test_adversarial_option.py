"""task.adversarial: adversarial training as an option of the classification task."""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import load_file
from torch import nn

from core_support import SYNTH
from trainlab.cli.main import main
from trainlab.tasks.attacked import AdversarialOptions, Attacker
from trainlab.train.checkpoint import resolve_checkpoint


def train(recipe: Path, run: Path, *overrides: str) -> int:
    return main(["train", str(recipe), *overrides, "--run-dir", str(run), "--no-progress"])


def weights(run: Path) -> dict[str, torch.Tensor]:
    return load_file(str(resolve_checkpoint(run, "latest") / "model.safetensors"))


def test_option_equals_the_adversarial_task_and_differs_from_plain(recipe, tmp_path) -> None:
    path = recipe(SYNTH)
    opt = "task={name: classification, adversarial: {method: pgd, eps: 0.05, steps: 2}}"
    alias = "task={name: adversarial, method: pgd, eps: 0.05, steps: 2}"
    assert train(path, tmp_path / "opt", opt) == 0
    assert train(path, tmp_path / "alias", alias) == 0
    assert train(path, tmp_path / "plain") == 0
    a, b, c = weights(tmp_path / "opt"), weights(tmp_path / "alias"), weights(tmp_path / "plain")
    assert all(torch.equal(a[k], b[k]) for k in a)  # the same training, bit for bit
    assert any(not torch.equal(a[k], c[k]) for k in a)


def test_bad_adversarial_options_are_one_line(recipe, tmp_path, capsys) -> None:
    path = recipe(SYNTH + "task: {name: classification}\n")
    run = tmp_path / "r"
    assert train(path, run, "task.adversarial={eps: 2.0}") == 2
    assert "task.adversarial" in capsys.readouterr().err
    assert train(path, run, "task.adversarial={method: cw}") == 2
    assert "task.adversarial" in capsys.readouterr().err
    assert train(path, run, "task.adversarial={eps: 0.1}", "task.mixup_alpha=0.2") == 2
    assert "not together with mixup" in capsys.readouterr().err
    assert not run.exists()


def test_attack_restores_each_module_mode() -> None:
    from trainlab.compress.attack import Box

    model = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 3))
    model.train()
    model[1].eval()  # train.freeze_bn keeps this norm in eval mode
    attacker = Attacker(AdversarialOptions(method="pgd", eps=0.1, steps=2))
    attacker.box = Box(torch.zeros(1, 1), torch.ones(1, 1), -1.0, 1.0)
    x, y = torch.rand(6, 4) * 2 - 1, torch.randint(0, 3, (6,))
    adv = attacker.attack(model, x, y)
    assert (adv - x).abs().max() <= 0.2 + 1e-6 and not torch.equal(adv, x)
    assert [m.training for m in model] == [True, False, True, True]
