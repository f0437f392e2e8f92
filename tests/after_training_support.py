"""Tiny trained runs shared by the tests of the tools used after training (deploy, compress).

Each is trained once per test session (1–2 epochs, one thread, a few seconds) through the real
``trainlab train`` entry point; tests must never modify them (tools write new files only)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from trainlab.cli.main import main

REPO = Path(__file__).resolve().parents[1]

DIGITS_CNN = """
name: digits_cnn
seed: 0
data: {name: digits, batch_size: 64}
model: {name: resnet_small, widths: [8, 16, 16], blocks: [1, 1]}
optim: {name: sgd, lr: 0.1, momentum: 0.9}
train: {epochs: 2, precision: fp32, threads: 1, tensorboard: false, report: false, norms: false}
"""

REVIEWS_GRU = """
name: reviews_gru
seed: 0
data: {name: text_csv, path: REVIEWS, max_len: 12, batch_size: 16}
model: {name: gru, vocab_size: 64, embed_dim: 16, hidden: 32}
optim: {name: adam, lr: 0.01}
train: {epochs: 3, precision: fp32, threads: 1, tensorboard: false, report: false, norms: false}
"""

TABLE_MLP = """
name: table_mlp
seed: 0
data: {name: csv, path: PATH, target: label, categorical: [colour], batch_size: 32}
model: {name: mlp, hidden: [16]}
optim: {name: adam, lr: 0.01}
train: {epochs: 3, precision: fp32, threads: 1, tensorboard: false, report: false, norms: false}
"""


def train_tiny(root: Path, name: str, text: str) -> Path:
    recipe = root / f"{name}.yaml"
    recipe.write_text(text)
    run = root / name
    code = main(["train", str(recipe), "--run-dir", str(run), "--no-progress"])
    assert code == 0
    return run


def table_csv(path: Path, n: int = 300) -> Path:
    """Two numeric columns and a colour; the label is decided by ``a + (colour == red)``."""
    rng = np.random.default_rng(0)
    lines = ["a,b,colour,label"]
    for _ in range(n):
        a, b = rng.normal(size=2)
        colour = ["red", "green", "blue"][rng.integers(3)]
        label = "hi" if a + (colour == "red") > 0.5 else "lo"
        lines.append(f"{a:.4f},{b:.4f},{colour},{label}")
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="session")
def digits_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small residual CNN trained 2 epochs on sklearn's 8×8 digits."""
    return train_tiny(tmp_path_factory.mktemp("runs"), "digits_cnn", DIGITS_CNN)


@pytest.fixture(scope="session")
def text_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A GRU review classifier (recipes/data/reviews.csv), 3 epochs."""
    text = REVIEWS_GRU.replace("REVIEWS", str(REPO / "recipes" / "data" / "reviews.csv"))
    return train_tiny(tmp_path_factory.mktemp("runs"), "reviews_gru", text)


@pytest.fixture(scope="session")
def table_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An MLP on a CSV table with a categorical column (one-hot), 3 epochs."""
    root = tmp_path_factory.mktemp("runs")
    csv = table_csv(root / "table.csv")
    return train_tiny(root, "table_mlp", TABLE_MLP.replace("PATH", str(csv)))
