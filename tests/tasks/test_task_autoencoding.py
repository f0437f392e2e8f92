"""autoencoder and vae: reconstruction beats the mean image; the ELBO's two terms are logged."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file
from task_support import records
from torch import nn

from trainlab.experiment import build_data
from trainlab.tasks.autoencoding import VAETask, recon_per_sample
from trainlab.tasks.common import to_unit_range
from trainlab.tasks.sample_grid import SampleGrid
from trainlab.train.checkpoint import resolve_checkpoint

VAE = """
name: vae
seed: 0
data: {name: digits, batch_size: 32}
model: {name: vae, image_size: 8, hidden: [64], latent_dim: 4}
task: {name: vae, beta: 1.0}
optim: {name: adam, lr: 0.005}
train: {epochs: 8, log_every: 1, precision: fp32, monitor: val/nelbo, monitor_mode: min}
"""

AE = """
name: ae
seed: 0
data: {name: digits, batch_size: 64}
model: {name: autoencoder, image_size: 8, hidden: [64], latent_dim: 8}
task: {name: autoencoder}
optim: {name: adam, lr: 0.003}
train: {epochs: 5, log_every: 5, precision: fp32, monitor: val/mse, monitor_mode: min}
"""


def mean_image_baselines() -> tuple[float, float]:
    """Per-sample BCE (summed over pixels) and per-pixel MSE on digits' val split of the best
    input-independent reconstruction: the training split's mean image."""
    data = build_data("digits")
    data.setup(torch.device("cpu"))
    train = torch.cat([to_unit_range(x) for x, _ in data.loader("train").iter_epoch(0)])
    val = torch.cat([to_unit_range(x) for x, _ in data.loader("val").iter_epoch(0)])
    mean = train.mean(0, keepdim=True).expand_as(val)
    bce = float(recon_per_sample(mean, val, "bce").mean())
    return bce, float((mean - val).pow(2).mean())


def test_vae_elbo_falls_below_mean_image_baseline(run_recipe) -> None:
    summary, run = run_recipe(VAE)
    final = summary["final"]
    bce_baseline, _ = mean_image_baselines()  # ≈ 27 nats
    first = records(run)[0]  # step 1: the untrained model, ≈ 64·ln 2 ≈ 44 nats
    assert {"train/recon", "train/kl"} <= first.keys()
    assert final["val/nelbo"] < 0.7 * first["train/loss"]
    # Beating the mean image means the code carries information about each digit: a VAE whose
    # KL term were dropped or sign-flipped would not get here with a finite, positive KL.
    assert final["val/nelbo"] < bce_baseline - 1.5, (final["val/nelbo"], bce_baseline)
    assert 0.5 < final["val/kl"] < 20
    assert final["val/recon"] + final["val/kl"] == pytest.approx(final["val/nelbo"], rel=1e-5)
    assert final["val/loss"] == pytest.approx(final["val/nelbo"], rel=1e-5)  # β = 1


def test_autoencoder_beats_mean_image(run_recipe) -> None:
    summary, _ = run_recipe(AE)
    _, mse_baseline = mean_image_baselines()  # ≈ 0.072 per pixel
    assert summary["test"]["test/mse"] < 0.8 * mse_baseline
    assert summary["test"]["test/psnr"] > 10 * torch.log10(torch.tensor(1 / mse_baseline)).item()


def test_beta_weights_only_the_kl_term() -> None:
    class Fixed(nn.Module):  # reconstruction 0.5 everywhere, mu = 1, logvar = 0
        def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
            n = len(x)
            return torch.full_like(x, 0.5), torch.ones(n, 2), torch.zeros(n, 2)

    x = torch.rand(3, 1, 4, 4)
    out1 = VAETask(beta=1.0, rescale=False).train_step(Fixed(), (x, torch.zeros(3)))
    out4 = VAETask(beta=4.0, rescale=False).train_step(Fixed(), (x, torch.zeros(3)))
    # KL(N(1, 1) ‖ N(0, 1)) = ½·μ² per dimension = 1 for 2 dimensions.
    assert float(out1.extras["kl"]) == pytest.approx(1.0)
    assert float(out1.extras["recon"]) == pytest.approx(16 * torch.log(torch.tensor(2.0)).item())
    assert float(out4.loss - out1.loss) == pytest.approx(3.0)


def test_sample_grid_saves_images_without_changing_training(run_recipe, tmp_path) -> None:
    short = ["train.epochs=2", "train.log_every=50"]
    run_recipe(VAE, *short, name="plain")
    grid = SampleGrid(tmp_path / "grids", n=16)
    from trainlab.run import train_run

    (tmp_path / "g.yaml").write_text(VAE)
    train_run(tmp_path / "g.yaml", short, run_dir=tmp_path / "grid", progress=False,
              extra_callbacks=[grid])  # fmt: skip
    assert [p.name for p in grid.written] == ["epoch-0001.png", "epoch-0002.png"]
    assert all(p.stat().st_size > 100 for p in grid.written)
    a = load_file(str(resolve_checkpoint(tmp_path / "plain") / "model.safetensors"))
    b = load_file(str(resolve_checkpoint(tmp_path / "grid") / "model.safetensors"))
    assert all(torch.equal(a[k], b[k]) for k in a)  # its own RNG: training is untouched
