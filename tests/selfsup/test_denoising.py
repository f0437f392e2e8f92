"""denoising_autoencoder: patch masking and noise, the clean target, and probing its code."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from trainlab.errors import ConfigError
from trainlab.models import create_model
from trainlab.run import train_run
from trainlab.selfsup.probe import feature_fn, probe_runs
from trainlab.tasks.common import to_unit_range
from trainlab.tasks.denoising import DenoisingTask, corrupt


def test_corrupt_blanks_the_share_of_patches() -> None:
    x = torch.rand(16, 1, 28, 28) * 0.5 + 0.5  # no pixel is 0 before masking
    y = corrupt(x, 0.5, 4, 0.0, torch.Generator().manual_seed(0))
    blanked = (y == 0).view(16, 1, 7, 4, 7, 4)
    per_patch = blanked.all(5).all(3).view(16, 49)  # whole 4×4 squares, never parts of them
    assert torch.equal(blanked.float().sum((1, 3, 5)).view(16, 49) % 16, torch.zeros(16, 49))
    assert (per_patch.sum(1) == round(0.5 * 49)).all()  # 24 of 49 patches in every image
    kept = ~(y == 0)
    assert torch.equal(y[kept], x[kept])  # the other pixels untouched
    assert not torch.equal(per_patch[0], per_patch[1])  # each image its own patches


def test_corrupt_noise_and_reproducibility() -> None:
    x = torch.full((4, 1, 8, 8), 0.5)
    y = corrupt(x, 0.0, 4, 0.1, torch.Generator().manual_seed(1))
    assert 0.05 < float((y - x).std()) < 0.15 and float(y.min()) >= 0 and float(y.max()) <= 1
    again = corrupt(x, 0.0, 4, 0.1, torch.Generator().manual_seed(1))
    assert torch.equal(y, again)
    odd = corrupt(torch.ones(2, 1, 10, 10), 0.25, 4, 0.0)  # 3×3 grid, last patches cut
    assert odd.shape == (2, 1, 10, 10)


def test_task_reconstructs_the_clean_image() -> None:
    torch.manual_seed(0)
    model = create_model("conv_autoencoder", latent_dim=8, channels=[8, 16])
    task = DenoisingTask(mask_ratio=0.5, patch=4)
    x = torch.randn(6, 1, 28, 28)
    out = task.train_step(model, (x, torch.zeros(6)))
    out.loss.backward()
    assert torch.isfinite(out.loss) and all(p.grad is not None for p in model.parameters())
    model.eval()
    with torch.no_grad():
        ev1, ev2 = task.eval_step(model, (x, None)), task.eval_step(model, (x, None))
        assert torch.equal(ev1.target, to_unit_range(x))  # the target is the clean image
        assert float(ev1.loss) == float(ev2.loss)  # seeded evaluation corruption
        assert torch.equal(feature_fn(model, task)(x), model.encode(to_unit_range(x)))
    for bad in ({"mask_ratio": 1.0}, {"patch": 0}, {"noise": -0.1},
                {"mask_ratio": 0.0, "noise": 0.0}):  # fmt: skip
        with pytest.raises(ConfigError, match="task"):
            DenoisingTask(**bad)


RECIPE = """
name: mae_digits
seed: 0
data: {name: digits, batch_size: 64}
model: {name: conv_autoencoder, image_size: 8, channels: [8, 16], latent_dim: 12}
task: {name: denoising_autoencoder, mask_ratio: 0.25, patch: 2}
optim: {name: adam, lr: 0.003}
train: {epochs: 2, log_every: 5, precision: fp32, monitor: val/mse, monitor_mode: min,
        tensorboard: false, report: false, norms: false}
"""


def test_tiny_run_learns_and_is_probed(tmp_path: Path) -> None:
    (tmp_path / "r.yaml").write_text(RECIPE)
    summary = train_run(tmp_path / "r.yaml", run_dir=tmp_path / "run", progress=False)
    history = [h["val/mse"] for h in summary["history"] if "val/mse" in h]
    assert history[-1] < history[0]
    trained, random = probe_runs([tmp_path / "run"], k=5, train_samples=None)
    assert trained.feature_dim == random.feature_dim == 12  # the code: model.encode
    assert 0.1 < random.probe_acc <= 1 and 0.1 < trained.probe_acc <= 1
