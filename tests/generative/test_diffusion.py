"""diffusion: noise schedules, q_sample statistics, DDPM/DDIM samplers, the U-Net, the task."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from trainlab.errors import ConfigError
from trainlab.models import create_model
from trainlab.tasks.diffusion import DiffusionTask
from trainlab.tasks.diffusion_schedule import (
    NoiseSchedule,
    ddim_sample,
    ddim_steps,
    ddpm_sample,
    sample,
)


@pytest.mark.parametrize("kind", ["linear", "cosine"])
@pytest.mark.parametrize("steps", [10, 50, 1000])
def test_alpha_bar_is_decreasing_and_inside_the_unit_interval(kind: str, steps: int) -> None:
    s = NoiseSchedule.make(kind, steps)
    ab = s.alpha_bar
    assert ab.shape == (steps,)
    assert bool((ab > 0).all()) and bool((ab < 1).all())
    assert bool((ab[1:] < ab[:-1]).all())
    assert bool((s.betas > 0).all()) and bool((s.betas < 1).all())
    assert float(ab[-1]) < 0.01  # the chain ends (almost) in pure noise


def test_schedules_follow_their_definitions() -> None:
    lin = NoiseSchedule.make("linear", 1000)
    assert float(lin.betas[0]) == pytest.approx(1e-4) and float(lin.betas[-1]) == pytest.approx(
        0.02
    )
    cos = NoiseSchedule.make("cosine", 1000)
    f = lambda t: math.cos((t / 1000 + 0.008) / 1.008 * math.pi / 2) ** 2  # noqa: E731
    for t in (0, 250, 500, 900):  # ᾱ_t = f(t + 1) / f(0) with steps counted from 0
        assert float(cos.alpha_bar[t]) == pytest.approx(f(t + 1) / f(0), rel=1e-9)
    # The cosine schedule destroys information more slowly in the middle of the chain.
    assert float(cos.alpha_bar[500]) > float(lin.alpha_bar[500])


def test_bad_schedule_options_are_one_line_errors() -> None:
    with pytest.raises(ConfigError, match="valid: linear, cosine"):
        NoiseSchedule.make("quadratic", 100)
    with pytest.raises(ConfigError, match="timesteps"):
        NoiseSchedule.make("cosine", 1)
    with pytest.raises(ConfigError, match="steps must lie"):
        ddim_steps(100, 101)


def test_q_sample_has_the_marginal_mean_and_variance() -> None:
    s = NoiseSchedule.make("linear", 1000)
    g = torch.Generator().manual_seed(0)
    x0 = torch.full((20_000, 1, 1, 1), 0.7)
    for t in (0, 300, 999):
        tt = torch.full((len(x0),), t)
        xt = s.q_sample(x0, tt, torch.randn(x0.shape, generator=g))
        ab = float(s.alpha_bar[t])
        assert float(xt.mean()) == pytest.approx(math.sqrt(ab) * 0.7, abs=0.02)
        assert float(xt.var()) == pytest.approx(1 - ab, abs=0.02 + 0.03 * (1 - ab))


def test_ddim_steps_are_even_and_include_both_ends() -> None:
    assert ddim_steps(1000, 1000) == list(range(1000))
    seq = ddim_steps(1000, 20)
    assert len(seq) == 20 and seq[0] == 0 and seq[-1] == 999
    gaps = [b - a for a, b in zip(seq, seq[1:])]
    assert max(gaps) - min(gaps) <= 1


class _Smooth(nn.Module):
    """A fixed, smooth stand-in for a trained denoiser: ε̂ depends on x_t and t."""

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return 0.4 * x + 0.1 * torch.tanh(x.roll(1, -1)) + 1e-3 * t.float().view(-1, 1, 1, 1)


def test_ddim_with_eta_one_and_every_step_is_ancestral_ddpm() -> None:
    net, s = _Smooth(), NoiseSchedule.make("cosine", 60)
    x_t = torch.randn(4, 1, 6, 6, generator=torch.Generator().manual_seed(1))
    a = ddpm_sample(net, s, x_t, torch.Generator().manual_seed(2))
    b = ddim_sample(net, s, x_t, torch.Generator().manual_seed(2), steps=60, eta=1.0)
    torch.testing.assert_close(a, b, atol=1e-5, rtol=0)
    c = ddim_sample(net, s, x_t, torch.Generator().manual_seed(3), steps=60, eta=1.0)
    assert (a - c).abs().max() > 1e-2  # the per-step noise matters with η = 1 …


def test_ddim_with_eta_zero_is_deterministic_given_the_start_noise() -> None:
    net, s = _Smooth(), NoiseSchedule.make("linear", 100)
    x_t = torch.randn(4, 1, 6, 6, generator=torch.Generator().manual_seed(1))
    a = ddim_sample(net, s, x_t, torch.Generator().manual_seed(2), steps=100, eta=0.0)
    b = ddim_sample(net, s, x_t, torch.Generator().manual_seed(9), steps=100, eta=0.0)
    assert torch.equal(a, b)  # … and none with η = 0
    fewer = ddim_sample(net, s, x_t, None, steps=10, eta=0.0)
    assert fewer.shape == a.shape and bool(fewer.abs().le(1 + 1e-6).all())


def test_sample_checks_its_options_and_stays_in_range() -> None:
    net = create_model("ddpm_unet", base=8, mults=[1, 2], attention=True, image_size=8)
    s = NoiseSchedule.make("cosine", 20)
    g = torch.Generator().manual_seed(0)
    x = sample(net.train(), s, 3, (1, 8, 8), sampler="ddim", steps=5, generator=g)
    assert x.shape == (3, 1, 8, 8) and float(x.abs().max()) <= 1
    assert net.training  # the train/eval mode is restored
    with pytest.raises(ConfigError, match="valid: ddpm, ddim"):
        sample(net, s, 1, (1, 8, 8), sampler="euler")
    with pytest.raises(ConfigError, match="use --sampler ddim"):
        sample(net, s, 1, (1, 8, 8), sampler="ddpm", steps=5)


@pytest.mark.parametrize("size", [8, 28, 7])
def test_unet_returns_noise_of_the_input_shape(size: int) -> None:
    net = create_model("ddpm_unet", base=8, mults=[1, 2, 2], in_channels=2, image_size=size)
    x = torch.randn(3, 2, size, size)
    out = net(x, torch.tensor([0, 10, 999])).detach()
    assert out.shape == x.shape
    # The output layer starts at zero: ε̂ = 0, so the first loss is the noise's variance.
    assert float(out.abs().max()) == 0.0
    assert net(x, torch.tensor(5)).shape == x.shape  # one t for the whole batch


def test_unet_output_depends_on_t_after_a_step() -> None:
    torch.manual_seed(0)
    net = create_model("ddpm_unet", base=8, mults=[1, 2], image_size=8, dropout=0.0)
    task = DiffusionTask(timesteps=50)
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    x = torch.randn(8, 1, 8, 8)
    for _ in range(3):
        opt.zero_grad()
        task.train_step(net, (x, torch.zeros(8))).loss.backward()
        opt.step()
    xt = torch.randn(1, 1, 8, 8).expand(2, 1, 8, 8)
    out = net.eval()(xt, torch.tensor([1, 40]))
    assert not torch.allclose(out[0], out[1])


def test_one_training_step_lowers_the_loss_on_a_fixed_batch() -> None:
    torch.manual_seed(0)
    net = create_model("ddpm_unet", base=8, mults=[1, 2], image_size=8, dropout=0.0)
    task = DiffusionTask(schedule="linear", timesteps=100)
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    x = torch.rand(16, 1, 8, 8)
    batch = (x, torch.zeros(16))
    first = task.eval_step(net, batch).loss.detach()  # fixed t and noise (eval_seed)
    assert float(first) == pytest.approx(1.0, abs=0.1)  # ε̂ = 0 at initialisation
    assert torch.equal(first, task.eval_step(net, batch).loss)
    for _ in range(15):
        opt.zero_grad()
        out = task.train_step(net, batch)
        assert out.loss.shape == () and out.loss.requires_grad
        out.loss.backward()
        opt.step()
    assert float(task.eval_step(net, batch).loss.detach()) < 0.8 * float(first)


def test_task_refuses_models_that_are_not_noise_predictors() -> None:
    task = DiffusionTask(timesteps=10)
    lenet = create_model("lenet5")
    with pytest.raises(ConfigError, match="not a noise predictor; use model.name=ddpm_unet"):
        task.train_step(lenet, (torch.randn(2, 1, 28, 28), torch.zeros(2)))

    class Shrinks(nn.Module):
        def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
            return x[:, :, :4]

    with pytest.raises(ConfigError, match="not the shape of its input"):
        task.train_step(Shrinks(), (torch.randn(2, 1, 8, 8), torch.zeros(2)))


def test_task_samples_grids_in_the_unit_range() -> None:
    net = create_model("ddpm_unet", base=8, mults=[1], attention=False, image_size=8)
    task = DiffusionTask(timesteps=20, grid_steps=100)  # more grid steps than T: all T
    assert task.grid_steps == 20
    images = task.sample_images(net, 5, torch.Generator().manual_seed(0))
    assert images.shape == (5, 1, 8, 8)
    assert float(images.min()) >= 0 and float(images.max()) <= 1


@pytest.mark.parametrize("kind", ["linear", "cosine"])
def test_samplers_return_the_data_under_the_exact_denoiser(kind: str) -> None:
    # Data = one image c: the optimal ε̂(x_t, t) = (x_t − √ᾱ_t c)/√(1 − ᾱ_t) is known in closed
    # form, and every sampler must then land on c whatever the noise it starts from.
    s = NoiseSchedule.make(kind, 200)
    c = torch.linspace(-0.9, 0.9, 16).view(1, 1, 4, 4)

    def exact(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        ab = s.at(s.alpha_bar, t, x)
        return (x - ab.sqrt() * c) / (1 - ab).sqrt()

    x_t = torch.randn(3, 1, 4, 4, generator=torch.Generator().manual_seed(0))
    g = torch.Generator().manual_seed(1)
    for out in (ddpm_sample(exact, s, x_t, g), ddim_sample(exact, s, x_t, g, steps=10),
                ddim_sample(exact, s, x_t, g, steps=50, eta=1.0)):  # fmt: skip
        torch.testing.assert_close(out, c.expand_as(out), atol=1e-4, rtol=0)
