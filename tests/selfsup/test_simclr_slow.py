"""Slow tier: SimCLR on real Fashion-MNIST (a small subset, no labels in training) learns
features a linear probe and k-NN read out clearly better than the same encoder's random ones."""

from __future__ import annotations

from pathlib import Path

import pytest

from trainlab.run import train_run
from trainlab.selfsup.probe import probe_runs

REPO = Path(__file__).resolve().parents[2]
RECIPE = REPO / "recipes" / "simclr_fashion_mnist.yaml"


def _have_fashion_mnist() -> bool:
    return Path("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz").is_file()


@pytest.mark.slow
@pytest.mark.skipif(not _have_fashion_mnist(), reason="Fashion-MNIST files not installed")
def test_simclr_features_beat_the_random_encoder(tmp_path: Path) -> None:
    overrides = ["data.subset=2000", "train.epochs=5", "train.report=false",
                 "train.tensorboard=false"]  # fmt: skip
    train_run(RECIPE, overrides, run_dir=tmp_path / "simclr", progress=False)
    trained, random = probe_runs([tmp_path / "simclr"], k=20, train_samples=2000,
                                 test_samples=2000)  # fmt: skip
    assert (trained.weights, random.weights) == ("trained", "random")
    # Measured (seed 0): linear probe 0.778 vs 0.721, 20-NN 0.728 vs 0.712 (2k/2k images).
    # k-NN gains less this early: random conv features already cluster Fashion-MNIST well.
    assert trained.probe_acc > random.probe_acc + 0.03, (trained, random)
    assert trained.knn_acc > random.knn_acc + 0.005, (trained, random)
