"""Fréchet distance, classifier confidence and inception score against known cases."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from trainlab.errors import ConfigError
from trainlab.metrics.generative import (
    FeatureExtractor,
    GenerativeScorer,
    classifier_confidence,
    frechet_distance,
    frechet_from_stats,
    gaussian_stats,
    inception_score,
)


def test_identical_sets_are_at_distance_zero() -> None:
    x = np.random.default_rng(0).normal(size=(500, 6)) @ np.diag([1, 2, 3, 0.5, 1, 4])
    assert frechet_distance(x, x) == pytest.approx(0.0, abs=1e-6)
    assert frechet_distance(torch.as_tensor(x), x.copy()) == pytest.approx(0.0, abs=1e-6)


def test_shifted_and_scaled_gaussians_match_the_closed_form() -> None:
    # N(μ1, Σ1), N(μ2, Σ2) with commuting (diagonal) covariances: the distance is
    # ‖μ1 − μ2‖² + Σ_i (σ1_i − σ2_i)².
    mu1, mu2 = np.array([0.0, 1.0, -2.0]), np.array([1.0, 1.0, 0.0])
    s1, s2 = np.array([1.0, 2.0, 0.5]), np.array([3.0, 2.0, 1.0])
    exact = float(((mu1 - mu2) ** 2).sum() + ((s1 - s2) ** 2).sum())
    assert frechet_from_stats(mu1, np.diag(s1**2), mu2, np.diag(s2**2)) == pytest.approx(exact)
    rng = np.random.default_rng(1)
    a = mu1 + rng.normal(size=(100_000, 3)) * s1
    b = mu2 + rng.normal(size=(100_000, 3)) * s2
    assert frechet_distance(a, b) == pytest.approx(exact, rel=0.02)


def test_non_commuting_covariances_match_the_two_dimensional_formula() -> None:
    # tr((Σ1 Σ2)^{1/2}) for 2×2 matrices: sqrt(tr(Σ1Σ2) + 2 sqrt(det(Σ1Σ2))).
    s1 = np.array([[2.0, 0.8], [0.8, 1.0]])
    s2 = np.array([[1.0, -0.3], [-0.3, 0.5]])
    m = s1 @ s2
    tr_sqrt = np.sqrt(np.trace(m) + 2 * np.sqrt(np.linalg.det(m)))
    exact = np.trace(s1) + np.trace(s2) - 2 * tr_sqrt
    got = frechet_from_stats(np.zeros(2), s1, np.zeros(2), s2)
    assert got == pytest.approx(exact, rel=1e-8)


def test_stats_need_two_samples_of_flat_features() -> None:
    with pytest.raises(ConfigError, match="N ≥ 2"):
        gaussian_stats(np.zeros((1, 4)))
    with pytest.raises(ConfigError, match="N ≥ 2"):
        gaussian_stats(np.zeros(4))


def test_confidence_and_inception_score_bounds() -> None:
    sure = torch.eye(5).repeat(20, 1) * 30  # confident, all five classes equally often
    assert classifier_confidence(sure) == pytest.approx(1.0, abs=1e-6)
    assert inception_score(sure) == pytest.approx(5.0, rel=1e-4)
    one_class = torch.zeros(100, 5)
    one_class[:, 2] = 30  # confident, but every image is the same class
    assert inception_score(one_class) == pytest.approx(1.0, abs=1e-4)
    flat = torch.zeros(100, 5)  # no idea at all
    assert classifier_confidence(flat) == pytest.approx(0.2)
    assert inception_score(flat) == pytest.approx(1.0)


class _Tiny(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Flatten(), nn.Linear(16, 6), nn.ReLU())
        self.head = nn.Linear(6, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


def test_features_are_the_input_of_the_last_linear_layer() -> None:
    torch.manual_seed(0)
    net = _Tiny()
    x = torch.rand(7, 1, 4, 4)
    feats, logits = FeatureExtractor(net, batch=3)(x)  # three chunks
    torch.testing.assert_close(feats, net.body(x).double())
    torch.testing.assert_close(logits, net(x).double())
    with pytest.raises(ConfigError, match="no nn.Linear"):
        FeatureExtractor(nn.Conv2d(1, 1, 1))


def test_scorer_ranks_real_images_above_corrupted_ones() -> None:
    torch.manual_seed(0)
    net = _Tiny()
    g = torch.Generator().manual_seed(0)
    real = torch.rand(400, 1, 4, 4, generator=g) ** 3  # a skewed pixel distribution
    scorer = GenerativeScorer(FeatureExtractor(net), real[:200])
    same = scorer.score(real[200:])
    noise = scorer.score(torch.rand(200, 1, 4, 4, generator=g))
    assert same["n"] == 200 and same["fd"] < noise["fd"]
    with pytest.raises(ConfigError, match="same data"):
        scorer.score(torch.rand(5, 1, 8, 8))
