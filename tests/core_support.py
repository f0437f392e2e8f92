"""Recipe texts and markers shared by tests."""

from pathlib import Path

import pytest

FMNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
needs_fmnist = pytest.mark.skipif(
    not (FMNIST_DIR / "train-images-idx3-ubyte.gz").is_file(),
    reason="Fashion-MNIST files not installed (make setup installs dataset-fashion-mnist)",
)


SYNTH = """
name: synth
seed: 0
data: {name: synthetic, num_classes: 3, shape: [1, 6, 6], n_train: 192, n_val: 48, n_test: 48,
       batch_size: 32, noise: 2.0}
model: {name: mlp, hidden: [32]}
optim: {name: sgd, lr: 0.05, momentum: 0.9}
train: {epochs: 2, log_every: 2, precision: fp32, tensorboard: false, report: false}
"""
