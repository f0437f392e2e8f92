"""The LR range test: suggestions where short training does best, "unreliable" without signal,
and the recipe's model, optimizer and RNG left as they were."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from trainlab.cli.main import main
from trainlab.config.load import parse_config
from trainlab.experiment import build_experiment
from trainlab.studies.lr_find import lr_find, suggest, valley

DIGITS = """
name: digits_mlp
seed: 0
data: {name: digits, batch_size: 32}
model: {name: mlp, hidden: [64]}
optim: {name: sgd, lr: 0.05, momentum: 0.9}
train: {epochs: 2, log_every: 10, precision: fp32, tensorboard: false, report: false, threads: 1}
"""

NOISE = """
name: noise
seed: 0
data: {name: synthetic, num_classes: 4, n_train: 2048, batch_size: 64, noise: 1000.0}
model: {name: mlp, hidden: [64]}
optim: {name: sgd, lr: 0.05, momentum: 0.9}
train: {epochs: 1, precision: fp32, tensorboard: false, report: false, threads: 1}
"""


def _val_loss_after_short_training(lr: float) -> float:
    import yaml

    raw = yaml.safe_load(DIGITS)
    raw["optim"]["lr"] = lr
    exp = build_experiment(parse_config(raw))
    exp.trainer.fit(exp.model, exp.task, exp.data, exp.optimizer, exp.schedule)
    metrics = exp.task.metrics(exp.data.num_classes)
    result = exp.trainer.evaluate(exp.model, exp.task, exp.data.loader("val"), "val", metrics)
    loss = result["val/loss"]
    return loss if math.isfinite(loss) else math.inf


def test_suggestion_lies_where_short_training_does_best(recipe, tmp_path: Path) -> None:
    res = lr_find(recipe(DIGITS), steps=100, out=tmp_path / "lrf")
    assert res.reliable, res.reasons
    assert res.stopped.startswith("smoothed loss above")  # the ramp ran into divergence
    rates = [1e-3, 1e-2, 1e-1, 1.0, 10.0]
    losses = [_val_loss_after_short_training(lr) for lr in rates]
    best = rates[losses.index(min(losses))]
    # Within one decade of the best of five decade-spaced rates: between its neighbours.
    assert abs(math.log10(res.suggested) - math.log10(best)) <= 1.0, (res.suggested, losses)
    assert res.override == f"optim.lr={res.suggested:.3g}"
    saved = json.loads((tmp_path / "lrf" / "lr_find.json").read_text())
    assert saved["suggested"] == res.suggested and len(saved["lrs"]) == len(res.lrs)
    assert (tmp_path / "lrf" / "lr_find.png").stat().st_size > 10_000


def test_labels_without_signal_are_unreliable(recipe) -> None:
    res = lr_find(recipe(NOISE), steps=80)
    assert not res.reliable and res.suggested is None and res.override is None
    assert any("no rate where training makes progress" in r for r in res.reasons)


def test_experiment_from_python_is_left_as_it_was(recipe) -> None:
    import yaml

    exp = build_experiment(parse_config(yaml.safe_load(DIGITS)))
    before = {k: v.clone() for k, v in exp.model.state_dict().items()}
    lr_before = exp.optimizer.param_groups[0]["lr"]
    rng = torch.get_rng_state()
    res = lr_find(exp, steps=30, end=1.0)
    assert len(res.lrs) == 30 and res.lrs[0] == pytest.approx(1e-7)
    after = exp.model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert exp.optimizer.param_groups[0]["lr"] == lr_before
    assert not exp.optimizer.state  # no momentum buffers left behind
    assert torch.equal(torch.get_rng_state(), rng)


def test_rules_on_a_known_curve() -> None:
    # Flat, a smooth fall centred on lr=3e-3, the minimum near 0.1, then a blow-up.
    lrs = [10 ** (-7 + 8 * i / 99) for i in range(100)]
    losses = []
    for lr in lrs:
        x = math.log10(lr)
        fall = 2.0 - 1.8 / (1 + math.exp(-3 * (x + 2.5)))
        losses.append(fall if x < -1 else fall + 4 * (x + 1) ** 2)
    rules, reasons = suggest(lrs, losses)
    assert not reasons
    assert 1e-3 < rules["steepest"] < 1e-2
    assert 1e-3 < rules["valley"] < 1e-1
    low = lrs[losses.index(min(losses))]
    assert rules["min_div_10"] == pytest.approx(low / 10, rel=0.5)
    # fastai's rule on a straight fall of 10 points: index -1 + int(10/3) + int(10/6) = 3.
    assert valley(list(range(10)), [10.0 - i for i in range(10)]) == 3


def test_cli_prints_the_override_and_writes_files(recipe, tmp_path: Path, capsys) -> None:
    code = main(["lr-find", str(recipe(DIGITS)), "--steps", "60", "--out", str(tmp_path / "o")])
    out = capsys.readouterr().out
    assert code == 0
    assert "optim.lr=" in out or "unreliable" in out.lower()
    assert (tmp_path / "o" / "lr_find.json").is_file()


def test_cli_bad_range_is_one_line_exit_2(recipe, capsys) -> None:
    code = main(["lr-find", str(recipe(DIGITS)), "--start", "1", "--end", "0.1"])
    err = capsys.readouterr().err
    assert code == 2 and "start < end" in err and len(err.strip().splitlines()) == 1
