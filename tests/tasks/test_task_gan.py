"""gan: alternating D/G steps with two optimizers, samples approach the data, exact resume."""

from __future__ import annotations

import math

import pytest
import torch
import yaml
from safetensors.torch import load_file
from task_support import untrained_eval

from trainlab.config.load import parse_config
from trainlab.errors import ConfigError
from trainlab.experiment import build_experiment
from trainlab.models import create_model
from trainlab.run import train_run
from trainlab.tasks.gan import GANTask
from trainlab.train.checkpoint import resolve_checkpoint

GAN = """
name: gan
seed: 0
data: {name: digits, batch_size: 32}
model: {name: gan, image_size: 8, latent_dim: 8, hidden: [64]}
task: {name: gan, d_lr: 0.001}
optim: {name: adam, lr: 0.001, betas: [0.5, 0.999]}
train: {epochs: 5, log_every: 10, precision: fp32, monitor: val/mean_gap, monitor_mode: min}
"""


def test_generator_samples_move_towards_the_data(run_recipe) -> None:
    before = untrained_eval(GAN)  # tanh(≈0) images: mean gap ≈ 0.64 in the [-1, 1] scale
    summary, _ = run_recipe(GAN)
    history = summary["history"]
    for h in history:
        assert math.isfinite(h["train/loss_epoch"]) and math.isfinite(h["train/d_loss_epoch"])
        assert 0 < h["train/d_fake_epoch"] < h["train/d_real_epoch"] < 1  # D tells them apart
    after = summary["final"]
    assert after["val/mean_gap"] < 0.6 * before["val/mean_gap"], (before, after)
    assert after["val/std_gap"] < before["val/std_gap"]


@pytest.mark.parametrize("name", ["gan", "dcgan"])
def test_step_updates_discriminator_and_leaves_generator_to_the_trainer(name: str) -> None:
    torch.manual_seed(0)
    opts = {"hidden": [16]} if name == "gan" else {"width": 8}
    model = create_model(name, image_size=8, latent_dim=4, **opts)
    task = GANTask(d_lr=0.01)
    task.setup(model, torch.device("cpu"))
    g0 = [p.detach().clone() for p in model.generator.parameters()]
    d0 = [p.detach().clone() for p in model.discriminator.parameters()]
    out = task.train_step(model, (torch.randn(6, 1, 8, 8), torch.zeros(6)))
    # The discriminator stepped inside train_step and kept no gradients behind ...
    assert any(not torch.equal(a, b) for a, b in zip(d0, model.discriminator.parameters()))
    assert all(p.grad is None for p in model.discriminator.parameters())
    # ... the generator did not step; the trainer's backward gives it (and only it) gradients.
    assert all(torch.equal(a, b) for a, b in zip(g0, model.generator.parameters()))
    out.loss.backward()
    assert all(p.grad is not None for p in model.generator.parameters())
    assert all(p.grad is None for p in model.discriminator.parameters())
    assert set(out.extras) == {"d_loss", "d_real", "d_fake"}


def test_fp16_autocast_is_refused_with_a_config_error() -> None:
    model = create_model("gan", image_size=4, latent_dim=2, hidden=[4])
    with torch.autocast("cpu", dtype=torch.float16), pytest.raises(ConfigError, match="fp16"):
        GANTask().train_step(model, (torch.randn(4, 1, 4, 4), torch.zeros(4)))


def test_main_optimizer_holds_the_generator_only() -> None:
    exp = build_experiment(parse_config(yaml.safe_load(GAN)))
    in_optimizer = {id(p) for g in exp.optimizer.param_groups for p in g["params"]}
    assert in_optimizer == {id(p) for p in exp.model.generator.parameters()}


def test_task_state_round_trips_before_and_after_setup() -> None:
    model = create_model("gan", image_size=4, latent_dim=2, hidden=[4])
    task = GANTask()
    task.setup(model, torch.device("cpu"))
    task.train_step(model, (torch.randn(4, 1, 4, 4), torch.zeros(4)))
    state = task.state_dict()
    fresh = GANTask()
    fresh.load_state_dict(state)  # as on resume: loaded before the trainer calls setup()
    assert fresh.state_dict() == state
    fresh.setup(model, torch.device("cpu"))
    saved = state["d_optimizer"]["state"][0]["exp_avg"]
    assert torch.equal(fresh.d_optimizer.state_dict()["state"][0]["exp_avg"], saved)


def test_resume_mid_epoch_equals_uninterrupted_run(tmp_path) -> None:
    recipe = tmp_path / "gan.yaml"
    recipe.write_text(GAN)
    two = ["train.epochs=2", "train.log_every=50"]
    full = train_run(recipe, two, run_dir=tmp_path / "full", progress=False)
    part = tmp_path / "part"
    train_run(recipe, [*two, "train.max_steps=50"], run_dir=part, progress=False)  # 39 / epoch
    payload = torch.load(resolve_checkpoint(part) / "state.pt", weights_only=True)
    resumed = train_run(None, ["train.max_steps=null"], resume=part, progress=False)
    assert payload["position"] == {"epoch": 1, "batch": 11, "step": 50, "skipped": 0}
    assert resumed["steps"] == full["steps"] == 78
    a = load_file(str(resolve_checkpoint(tmp_path / "full") / "model.safetensors"))
    b = load_file(str(resolve_checkpoint(part) / "model.safetensors"))
    assert payload["task"] is not None  # the discriminator's optimizer travels with it
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert resumed["test"] == full["test"]
