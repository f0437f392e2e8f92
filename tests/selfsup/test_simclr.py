"""SimCLR: the NT-Xent loss against a hand computation, the two views, the model and the task."""

from __future__ import annotations

import math

import pytest
import torch

from trainlab.data.views import ViewSpec, random_view, two_views
from trainlab.errors import ConfigError
from trainlab.models import create_model
from trainlab.models.simclr import strip_head
from trainlab.tasks.simclr import SimCLRTask, nt_xent


def _nt_xent_by_hand(z1: torch.Tensor, z2: torch.Tensor, tau: float) -> float:
    """The paper's definition, one pair at a time, in plain Python floats."""
    z = [v / v.norm() for v in torch.cat([z1, z2]).double()]
    n = len(z1)
    total = 0.0
    for i in range(2 * n):
        j = (i + n) % (2 * n)
        sims = {k: float(z[i] @ z[k]) / tau for k in range(2 * n) if k != i}
        total += -math.log(math.exp(sims[j]) / sum(math.exp(s) for s in sims.values()))
    return total / (2 * n)


@pytest.mark.parametrize("tau", [0.1, 0.5, 1.0])
def test_nt_xent_matches_the_definition(tau: float) -> None:
    g = torch.Generator().manual_seed(0)
    z1, z2 = torch.randn(5, 7, generator=g), torch.randn(5, 7, generator=g)
    assert float(nt_xent(z1, z2, tau)) == pytest.approx(_nt_xent_by_hand(z1, z2, tau), rel=1e-5)


def test_nt_xent_known_values() -> None:
    n, tau = 4, 0.5
    z = torch.eye(2 * n)[:n]  # orthonormal samples
    # identical views: the partner scores 1/τ, the 2N − 2 other views 0
    assert float(nt_xent(z, z, tau)) == pytest.approx(math.log(1 + (2 * n - 2) * math.exp(-2)))
    # partners orthogonal as well: every candidate alike, chance among 2N − 1
    other = torch.eye(2 * n)[n:]
    assert float(nt_xent(z, other, tau)) == pytest.approx(math.log(2 * n - 1))
    # the scale of a projection does not matter (cosine similarity)
    g = torch.Generator().manual_seed(1)
    a, b = torch.randn(6, 3, generator=g), torch.randn(6, 3, generator=g)
    assert float(nt_xent(3 * a, 0.1 * b)) == pytest.approx(float(nt_xent(a, b)), rel=1e-5)
    with pytest.raises(ValueError, match="two \\(N, D\\) batches"):
        nt_xent(a, b[:5])


def test_nt_xent_gradient_pulls_partners_together() -> None:
    g = torch.Generator().manual_seed(2)
    z1 = torch.randn(8, 16, generator=g, requires_grad=True)
    z2 = torch.randn(8, 16, generator=g)
    before = torch.nn.functional.cosine_similarity(z1, z2).mean()
    nt_xent(z1, z2).backward()
    with torch.no_grad():
        after = torch.nn.functional.cosine_similarity(z1 - 1.0 * z1.grad, z2).mean()
    assert after > before


def test_two_views_differ_and_keep_the_shape() -> None:
    x = torch.rand(16, 1, 28, 28)
    a, b = two_views(x)
    assert a.shape == b.shape == x.shape and a.dtype == torch.float32
    assert not torch.allclose(a, b)
    assert not torch.allclose(a, x)
    per_sample = (a - b).flatten(1).abs().amax(1)
    assert (per_sample > 1e-3).all()  # every image's two views differ, not just some


def test_views_are_reproducible_with_a_generator() -> None:
    x = torch.rand(4, 3, 16, 16)
    one = random_view(x, generator=torch.Generator().manual_seed(5))
    two = random_view(x, generator=torch.Generator().manual_seed(5))
    assert torch.equal(one, two)


def test_flip_only_view_mirrors_or_keeps_each_image() -> None:
    x = torch.rand(32, 1, 8, 8)
    v = random_view(x, ViewSpec(scale=(1, 1), ratio=(1, 1), flip=True, jitter=0.0))
    kept = (v - x).flatten(1).abs().amax(1) < 1e-5
    mirrored = (v - x.flip(-1)).flatten(1).abs().amax(1) < 1e-5
    assert (kept | mirrored).all() and kept.any() and mirrored.any()


def test_crop_view_zooms_in() -> None:
    # A centred bright square: a crop of a quarter of the area, resized, shows more of it
    # on average than the whole image does (the crop lies inside the image, no padding).
    x = torch.zeros(64, 1, 28, 28)
    x[:, :, 7:21, 7:21] = 1.0
    v = random_view(x, ViewSpec(scale=(0.25, 0.25), ratio=(1, 1), flip=False, jitter=0.0))
    assert float(v.mean()) > float(x.mean()) + 0.1


def test_jitter_changes_contrast_and_brightness_only() -> None:
    x = torch.rand(8, 1, 10, 10)
    v = random_view(x, ViewSpec(scale=(1, 1), ratio=(1, 1), flip=False, jitter=0.3))
    # per image an affine map of the intensities: v = a·x + b
    for xi, vi in zip(x.flatten(1), v.flatten(1)):
        a, b = torch.linalg.lstsq(torch.stack([xi, torch.ones_like(xi)], 1), vi[:, None]).solution
        assert 0.7 - 1e-4 <= float(a) <= 1.3 + 1e-4
        assert torch.allclose(a * xi + b, vi, atol=1e-4)


def test_simclr_model_shapes_and_encoder_features() -> None:
    torch.manual_seed(0)
    model = create_model("simclr", encoder_options={"widths": [8, 16, 24]}, projection_dim=12)
    x = torch.randn(5, 1, 28, 28)
    assert model.encode(x).shape == (5, 24)  # resnet_small's pooled last stage
    assert model(x).shape == (5, 12)
    lenet = create_model("simclr", encoder="lenet5", hidden_dim=32)
    assert lenet.encode(x).shape == (5, 84)
    with pytest.raises(ConfigError, match="model.encoder"):
        create_model("simclr", encoder="resnet_smal")
    with pytest.raises(ConfigError, match="encoder_options"):
        create_model("simclr", encoder_options={"widthz": [8]})
    with pytest.raises(ConfigError, match="no nn.Linear head"):
        strip_head(torch.nn.Conv2d(1, 1, 3))


def test_task_steps_and_options() -> None:
    torch.manual_seed(0)
    model = create_model("simclr", encoder_options={"widths": [8, 16, 24]}, projection_dim=12)
    task = SimCLRTask(temperature=0.2)
    x, y = torch.randn(6, 1, 28, 28), torch.arange(6)
    out = task.train_step(model, (x, y))
    assert out.loss.dim() == 0 and torch.isfinite(out.loss) and out.preds is None
    assert 0 <= float(out.extras["contrast_acc"]) <= 1
    out.loss.backward()
    assert all(p.grad is not None for p in model.parameters())
    model.eval()
    with torch.no_grad():  # as the trainer evaluates
        ev1, ev2 = task.eval_step(model, (x, y)), task.eval_step(model, (x, y))
    assert ev1.preds.shape == (6, 24) and torch.equal(ev1.target, y)
    assert float(ev1.loss) == float(ev2.loss)  # evaluation views come from a seeded RNG
    for bad in ({"temperature": 0}, {"crop_scale": (0.5, 0.2)}, {"jitter": -1}):
        with pytest.raises(ConfigError, match="task\\."):
            SimCLRTask(**bad)

    class Table:
        input_shape = (13,)

    with pytest.raises(ConfigError, match="needs image data"):
        task.check_data(Table())
