"""triplet: in-batch mining, and embeddings whose nearest neighbours share the class."""

from __future__ import annotations

import math

import pytest
import torch
from task_support import untrained_eval

from trainlab.tasks.metric_learning import batch_all, batch_hard, pairwise_distances

TRIPLET = """
name: triplet
seed: 0
data: {name: digits, batch_size: 64}
model: {name: siamese, image_size: 8, channels: [16, 32], embedding_dim: 16}
task: {name: triplet, margin: 0.2}
optim: {name: adam, lr: 0.003}
train: {epochs: 3, log_every: 5, precision: fp32, monitor: val/knn_acc}
"""


def test_embeddings_reach_nearest_neighbour_accuracy(run_recipe) -> None:
    before = untrained_eval(TRIPLET)["val/knn_acc"]  # random conv features: ≈ 0.64
    summary, _ = run_recipe(TRIPLET)
    after = summary["test"]["test/knn_acc"]
    assert after > 0.9 and after > before + 0.2, (before, after)  # chance: 0.1
    final = summary["final"]
    assert final["train/d_neg_epoch"] > final["train/d_pos_epoch"]  # classes pulled apart
    assert 0 <= final["train/active_epoch"] < 0.5


# 1-D embeddings: class 0 at 0 and 1, class 1 at 1.5 and 3.
E = torch.tensor([[0.0], [1.0], [1.5], [3.0]])
Y = torch.tensor([0, 0, 1, 1])


def test_batch_hard_picks_farthest_positive_and_nearest_negative() -> None:
    out = batch_hard(pairwise_distances(E), Y, margin=0.5)
    # anchor: (d_pos, d_neg) = 0: (1, 1.5), 1: (1, 0.5), 1.5: (1.5, 0.5), 3: (1.5, 2)
    losses = [max(0.0, p - n + 0.5) for p, n in [(1, 1.5), (1, 0.5), (1.5, 0.5), (1.5, 2)]]
    assert float(out["loss"]) == pytest.approx(sum(losses) / 4)
    assert float(out["active"]) == pytest.approx(2 / 4)


def test_batch_all_averages_over_active_triplets() -> None:
    out = batch_all(pairwise_distances(E), Y, margin=0.5)
    pts = E.squeeze(1).tolist()
    losses = []
    for a in range(4):
        for p in range(4):
            for n in range(4):
                if a != p and Y[a] == Y[p] and Y[a] != Y[n]:
                    losses.append(max(0.0, abs(pts[a] - pts[p]) - abs(pts[a] - pts[n]) + 0.5))
    active = [v for v in losses if v > 0]
    assert float(out["loss"]) == pytest.approx(sum(active) / len(active))
    assert float(out["active"]) == pytest.approx(len(active) / len(losses))


@pytest.mark.parametrize("mine", [batch_hard, batch_all])
def test_batch_without_triplets_gives_zero_loss_and_finite_gradients(mine) -> None:
    e = torch.randn(4, 3, requires_grad=True)
    out = mine(pairwise_distances(e), torch.zeros(4, dtype=torch.long), margin=0.2)  # one class
    out["loss"].backward()
    assert float(out["loss"].detach()) == 0.0 and math.isfinite(float(e.grad.abs().sum()))
