"""Test-time augmentation (``task.tta: flip``) of the classification task."""

from __future__ import annotations

import pytest
import torch
import yaml
from task_support import untrained_eval
from torch import nn

from trainlab.config.load import parse_config
from trainlab.errors import ConfigError
from trainlab.experiment import build_experiment
from trainlab.tasks.classification import ClassificationTask, tta_logits

SYNTH_TTA = """
name: synth_tta
seed: 0
data: {name: synthetic, num_classes: 3, shape: [1, 6, 6], n_train: 96, n_val: 48, n_test: 48,
       batch_size: 32, noise: 2.0}
model: {name: mlp, hidden: [16]}
task: {name: classification, tta: flip}
optim: {name: sgd, lr: 0.05}
train: {epochs: 1, precision: fp32, tensorboard: false, report: false}
"""


class LeftRight(nn.Module):
    """Logits that depend on which half of the image is bright: not flip-invariant."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = x.shape[-1] // 2
        left, right = x[..., :w].sum((1, 2, 3)), x[..., w:].sum((1, 2, 3))
        return torch.stack([left, right, 0.5 * (left + right)], dim=1)


def test_flip_averages_the_probabilities_of_the_image_and_its_mirror() -> None:
    x = torch.rand(5, 1, 4, 6)
    model = LeftRight()
    out = tta_logits(model, x, "flip")
    expected = (model(x).softmax(-1) + model(x.flip(-1)).softmax(-1)) / 2
    torch.testing.assert_close(out.softmax(-1), expected)
    torch.testing.assert_close(out.exp().sum(-1), torch.ones(5))  # log-probabilities
    # LeftRight's mirror swaps classes 0 and 1: averaged, they get the same probability.
    p = out.softmax(-1)
    torch.testing.assert_close(p[:, 0], p[:, 1])
    assert not torch.allclose(model(x).softmax(-1)[:, 0], model(x).softmax(-1)[:, 1])


def test_flip_with_bce_averages_the_sigmoids() -> None:
    x = torch.rand(4, 1, 4, 6)
    model = LeftRight()
    out = tta_logits(model, x, "flip", sigmoid=True)
    expected = (model(x).sigmoid() + model(x.flip(-1)).sigmoid()) / 2
    torch.testing.assert_close(out.sigmoid(), expected)


def test_eval_step_uses_tta_and_reports_the_loss_of_the_averaged_prediction() -> None:
    x, y = torch.rand(6, 1, 4, 6), torch.tensor([0, 1, 2, 0, 1, 2])
    model = LeftRight()
    plain = ClassificationTask().eval_step(model, (x, y))
    tta = ClassificationTask(tta="flip").eval_step(model, (x, y))
    avg = (model(x).softmax(-1) + model(x.flip(-1)).softmax(-1)) / 2
    torch.testing.assert_close(tta.loss, nn.functional.nll_loss(avg.log(), y))
    assert not torch.allclose(tta.loss, plain.loss)


def test_recipe_option_runs_two_forward_passes_per_evaluation_batch() -> None:
    exp = build_experiment(parse_config(yaml.safe_load(SYNTH_TTA)))
    assert exp.task.tta == "flip"
    calls = []
    exp.model.register_forward_hook(lambda m, a, o: calls.append(a[0].shape[0]))
    metrics = exp.task.metrics(exp.data.num_classes)
    out = exp.trainer.evaluate(exp.model, exp.task, exp.data.loader("val"), "val", metrics)
    assert sum(calls) == 2 * 48  # every validation image, and its mirror
    assert 0.0 <= out["val/acc"] <= 1.0
    plain = untrained_eval(SYNTH_TTA.replace("tta: flip", "tta: null"))
    assert plain["val/loss"] != pytest.approx(out["val/loss"])


def test_unknown_tta_and_non_image_inputs_are_config_errors() -> None:
    with pytest.raises(ConfigError, match=r"task.tta: 'rotate'.*valid: flip"):
        ClassificationTask(tta="rotate")
    with pytest.raises(ConfigError, match="needs image batches"):
        tta_logits(nn.Linear(3, 2), torch.rand(4, 3), "flip")
    with pytest.raises(ConfigError, match="task.tta"):
        build_experiment(parse_config(yaml.safe_load(SYNTH_TTA.replace("flip", "spin"))))
    flat = SYNTH_TTA.replace("shape: [1, 6, 6]", "shape: [36]")
    with pytest.raises(ConfigError, match=r"needs image data .* shape \(36,\)"):
        build_experiment(parse_config(yaml.safe_load(flat)))  # before any training
