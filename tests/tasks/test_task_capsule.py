"""capsule_classification: the margin loss and reconstruction term by hand; CapsNet learns."""

from __future__ import annotations

import pytest
import torch
from task_support import records
from torch import nn

from trainlab.errors import ConfigError
from trainlab.tasks.capsule import CapsuleTask

CAPSNET = """
name: capsnet
seed: 0
data: {name: fashion_mnist, batch_size: 32, subset: 1000, test_subset: 300, val_fraction: 0.2}
model: {name: capsnet, conv_channels: 8, primary_maps: 2}
task: {name: capsule_classification}
optim: {name: adam, lr: 0.002}
train: {epochs: 2, log_every: 5, precision: fp32, tensorboard: false, report: false}
"""

# Capsule lengths of two samples over three classes, and their labels.
LENGTHS = torch.tensor([[0.95, 0.05, 0.3], [0.2, 0.5, 0.0]])
LABELS = torch.tensor([0, 1])
# Sample 0: true class long enough (0.95 ≥ m⁺), absent classes 0.05 (< m⁻, free) and 0.3:
#   0.5 · (0.3 − 0.1)² = 0.02.
# Sample 1: true class 0.5: (0.9 − 0.5)² = 0.16; absent 0.2: 0.5 · (0.2 − 0.1)² = 0.005; 0.0: free.
MARGIN = (0.02 + 0.165) / 2


class FixedCapsules(nn.Module):
    """Capsules whose lengths are LENGTHS (length along the first of 16 dims); the decoder
    gives 0.5 everywhere and records which labels it was asked to decode."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(()))  # something for gradients to reach
        self.decoded: torch.Tensor | None = None

    def capsules(self, x: torch.Tensor) -> torch.Tensor:
        caps = torch.zeros(len(x), 3, 16)
        caps[..., 0] = LENGTHS
        return caps * self.scale

    def reconstruct(self, caps: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        self.decoded = labels
        return torch.full((len(caps), 1, 2, 2), 0.5) * self.scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.capsules(x).norm(dim=-1)


def test_margin_loss_matches_the_hand_computed_case() -> None:
    out = CapsuleTask(recon_weight=0.0).train_step(FixedCapsules(), (torch.zeros(2, 1), LABELS))
    assert out.loss.item() == pytest.approx(MARGIN)
    assert out.extras["margin"].item() == pytest.approx(MARGIN)
    assert out.extras["recon"].item() == 0.0
    assert torch.allclose(out.preds, LENGTHS)  # accuracy is read from the capsule lengths


def test_reconstruction_term_is_scaled_sum_squared_error_of_the_true_capsule() -> None:
    model = FixedCapsules()
    x = torch.tensor([[[[0.0, 1.0], [1.0, 1.0]]], [[[0.0, 0.0], [0.5, 1.0]]]])  # (2, 1, 2, 2)
    out = CapsuleTask(recon_weight=0.01, rescale=False).train_step(model, (x, LABELS))
    sse = (4 * 0.25 + (0.25 + 0.25 + 0 + 0.25)) / 2  # per image, averaged over the batch
    assert out.extras["recon"].item() == pytest.approx(sse)
    assert out.loss.item() == pytest.approx(MARGIN + 0.01 * sse)
    assert torch.equal(model.decoded, LABELS)  # the decoder reads the labelled capsule
    out.loss.backward()
    assert model.scale.grad is not None


def test_bad_margins_and_models_without_capsules_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="m_pos"):
        CapsuleTask(m_pos=0.1, m_neg=0.2)
    with pytest.raises(ConfigError, match="capsnet"):
        CapsuleTask().train_step(nn.Linear(4, 3), (torch.zeros(2, 4), LABELS))


def test_capsnet_learns_fashion_mnist_well_above_chance(run_recipe) -> None:
    summary, run = run_recipe(CAPSNET)
    first = records(run)[0]
    assert {"train/margin", "train/recon", "train/acc"} <= first.keys()
    final, test = summary["final"], summary["test"]
    assert test["test/acc"] > 0.5, test  # chance: 0.1; ≈ 0.69 measured
    assert final["val/margin"] < 0.6 * first["train/margin"]
    assert final["val/recon"] < 0.7 * first["train/recon"]  # the decoder learned too
    assert final["val/loss"] == pytest.approx(
        final["val/margin"] + 0.0005 * final["val/recon"], rel=1e-4
    )
    assert 0.5 < test["test/auroc"] <= 1.0  # test-time curve metrics work on capsule lengths
