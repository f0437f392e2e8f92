"""adversarial_autoencoder: the three phases' gradients go where they should; the codes move
towards the prior while reconstructions beat the mean image; exact resume."""

from __future__ import annotations

import math

import pytest
import torch
import yaml
from safetensors.torch import load_file
from task_support import untrained_eval
from torch import nn

from trainlab.config.load import parse_config
from trainlab.errors import ConfigError
from trainlab.experiment import build_experiment
from trainlab.models import create_model
from trainlab.run import train_run
from trainlab.tasks.adversarial_autoencoding import AAETask
from trainlab.train.checkpoint import resolve_checkpoint

AAE = """
name: aae
seed: 0
data: {name: digits, batch_size: 32}
model: {name: adversarial_autoencoder, image_size: 8, hidden: [128, 64], latent_dim: 4,
        disc_hidden: 64}
task: {name: adversarial_autoencoder, adv_weight: 0.1, d_lr: 0.001}
optim: {name: adam, lr: 0.001, betas: [0.5, 0.999]}
train: {epochs: 25, log_every: 10, precision: fp32, monitor: val/mse, monitor_mode: min,
        tensorboard: false, report: false}
"""


def small_aae() -> nn.Module:
    torch.manual_seed(0)
    return create_model("adversarial_autoencoder", image_size=4, hidden=[8], latent_dim=2,
                        disc_hidden=8)  # fmt: skip


def test_step_trains_discriminator_and_leaves_the_autoencoder_to_the_trainer() -> None:
    model, task = small_aae(), AAETask(d_lr=0.01)
    task.setup(model, torch.device("cpu"))
    d0 = [p.detach().clone() for p in model.discriminator.parameters()]
    ae0 = [p.detach().clone() for p in task.optim_module(model).parameters()]
    out = task.train_step(model, (torch.rand(6, 1, 4, 4), torch.zeros(6)))
    # Phase 2 stepped the discriminator inside train_step and left no gradients behind ...
    assert any(not torch.equal(a, b) for a, b in zip(d0, model.discriminator.parameters()))
    assert all(p.grad is None for p in model.discriminator.parameters())
    # ... phases 1 and 3 are the returned loss: the trainer's backward reaches encoder and
    # decoder only (the generator loss passes through a frozen discriminator).
    assert all(torch.equal(a, b) for a, b in zip(ae0, task.optim_module(model).parameters()))
    out.loss.backward()
    assert all(p.grad is not None for p in task.optim_module(model).parameters())
    assert all(p.grad is None for p in model.discriminator.parameters())
    assert out.loss.item() == pytest.approx(
        out.extras["recon"].item() + 0.1 * out.extras["g_loss"].item(), rel=1e-6
    )


class ZeroLogits(nn.Module):
    """A discriminator that cannot tell: logit 0 (probability 0.5) for every code."""

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.zeros(1))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return z[:, :1] * 0 + self.w


def test_losses_against_an_undecided_discriminator() -> None:
    model = small_aae()
    model.discriminator = ZeroLogits()
    task = AAETask(loss="mse", adv_weight=0.5, d_lr=1e-9, rescale=False)
    x = torch.rand(4, 1, 4, 4)
    out = task.train_step(model, (x, torch.zeros(4)))
    recon = (model(x)[0] - x).pow(2).mean().item()  # per pixel
    assert out.extras["recon"].item() == pytest.approx(recon, rel=1e-5)
    assert out.extras["d_loss"].item() == pytest.approx(2 * math.log(2), rel=1e-5)
    assert out.extras["g_loss"].item() == pytest.approx(math.log(2), rel=1e-5)
    assert out.extras["d_prior"].item() == out.extras["d_code"].item() == 0.5
    assert out.loss.item() == pytest.approx(recon + 0.5 * math.log(2), rel=1e-5)


def test_codes_approach_the_prior_and_reconstructions_beat_the_mean_image(run_recipe) -> None:
    before = untrained_eval(AAE)  # codes of a random encoder: std ≈ 0.1, far from N(0, 1)
    summary, _ = run_recipe(AAE)
    after = summary["final"]
    # The mean image scores ≈ 0.072 per pixel on digits (see test_task_autoencoding); without
    # the adversary (adv_weight 0) the codes drift to gaps of ≈ 3.4 / 2.1 instead.
    assert after["val/mse"] < 0.045 and after["val/mse"] < 0.5 * before["val/mse"], after
    assert after["val/z_mean_gap"] < 0.3 and after["val/z_std_gap"] < 0.3, after
    assert before["val/z_std_gap"] > 0.6
    # The discriminator ends near chance: the codes look like prior samples to it.
    assert 1.0 < after["val/d_loss"] < 1.6  # 2·ln 2 ≈ 1.39 at chance
    assert 0.2 < after["train/d_code_epoch"] < after["train/d_prior_epoch"] < 0.8


def test_main_optimizer_holds_encoder_and_decoder_only() -> None:
    exp = build_experiment(parse_config(yaml.safe_load(AAE)))
    in_optimizer = {id(p) for g in exp.optimizer.param_groups for p in g["params"]}
    ae = [*exp.model.encoder.parameters(), *exp.model.decoder.parameters()]
    assert in_optimizer == {id(p) for p in ae}


def test_fp16_autocast_and_wrong_models_are_config_errors() -> None:
    model = small_aae()
    with torch.autocast("cpu", dtype=torch.float16), pytest.raises(ConfigError, match="fp16"):
        AAETask().train_step(model, (torch.rand(4, 1, 4, 4), torch.zeros(4)))
    with pytest.raises(ConfigError, match="adversarial_autoencoder"):
        AAETask().setup(create_model("autoencoder", image_size=4, hidden=[4]), torch.device("cpu"))


def test_task_state_round_trips_before_and_after_setup() -> None:
    model, task = small_aae(), AAETask()
    task.setup(model, torch.device("cpu"))
    task.train_step(model, (torch.rand(4, 1, 4, 4), torch.zeros(4)))
    state = task.state_dict()
    fresh = AAETask()
    fresh.load_state_dict(state)  # as on resume: loaded before the trainer calls setup()
    assert fresh.state_dict() == state
    fresh.setup(model, torch.device("cpu"))
    saved = state["d_optimizer"]["state"][0]["exp_avg"]
    assert torch.equal(fresh.d_optimizer.state_dict()["state"][0]["exp_avg"], saved)


def test_resume_mid_epoch_equals_uninterrupted_run(tmp_path) -> None:
    recipe = tmp_path / "aae.yaml"
    recipe.write_text(AAE)
    two = ["train.epochs=2", "train.log_every=50"]
    full = train_run(recipe, two, run_dir=tmp_path / "full", progress=False)
    part = tmp_path / "part"
    train_run(recipe, [*two, "train.max_steps=50"], run_dir=part, progress=False)  # 39 / epoch
    payload = torch.load(resolve_checkpoint(part) / "state.pt", weights_only=True)
    assert payload["position"] == {"epoch": 1, "batch": 11, "step": 50, "skipped": 0}
    assert payload["task"]["d_optimizer"]["state"]  # the discriminator's Adam travels with it
    resumed = train_run(None, ["train.max_steps=null"], resume=part, progress=False)
    assert resumed["steps"] == full["steps"] == 78
    a = load_file(str(resolve_checkpoint(tmp_path / "full") / "model.safetensors"))
    b = load_file(str(resolve_checkpoint(part) / "model.safetensors"))
    assert all(torch.equal(a[k], b[k]) for k in a)  # discriminator weights included
    assert resumed["test"] == full["test"]
