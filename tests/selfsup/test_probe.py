"""`trainlab probe`: features of a SimCLR run and of a supervised run, trained and random, read
out by a linear probe and k-NN on the same images."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from trainlab.cli.main import main
from trainlab.models import create_model
from trainlab.run import train_run
from trainlab.selfsup.probe import feature_fn, knn_accuracy, linear_probe, probe_runs

SIMCLR = """
name: simclr_digits
seed: 0
data: {name: digits, batch_size: 64}
model: {name: simclr, encoder_options: {widths: [8, 16, 16]}, image_size: 8,
        hidden_dim: 32, projection_dim: 16}
task: {name: simclr, temperature: 0.5, crop_scale: [0.5, 1.0], flip: false}
optim: {name: adam, lr: 0.003}
train: {epochs: 1, log_every: 5, precision: fp32, monitor: val/loss, monitor_mode: min,
        tensorboard: false, report: false, norms: false}
"""

SUPERVISED = """
name: supervised_digits
seed: 0
data: {name: digits, batch_size: 64}
model: {name: resnet_small, widths: [8, 16, 16]}
optim: {name: adam, lr: 0.003}
train: {epochs: 2, log_every: 5, precision: fp32, tensorboard: false, report: false,
        norms: false}
"""


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("probe")
    out = []
    for name, text in (("simclr", SIMCLR), ("supervised", SUPERVISED)):
        (root / f"{name}.yaml").write_text(text)
        train_run(root / f"{name}.yaml", run_dir=root / name, progress=False)
        out.append(root / name)
    return out[0], out[1]


def test_probe_rows_for_trained_and_random_weights(runs) -> None:
    simclr, supervised = runs
    rows = probe_runs([simclr, supervised], k=5, train_samples=None)
    assert [(r.model, r.weights) for r in rows] == [
        ("simclr", "trained"), ("simclr", "random"),
        ("resnet_small", "trained"), ("resnet_small", "random"),
    ]  # fmt: skip
    assert all(r.feature_dim == 16 for r in rows)  # widths[-1]: the same encoder in both
    assert all(0.1 < r.probe_acc <= 1 and 0.1 < r.knn_acc <= 1 for r in rows)
    # One epoch of labels teaches the supervised network more than its random start knows.
    assert rows[2].probe_acc > rows[3].probe_acc
    # Random weights are the run's own starting point: probing them twice gives one figure.
    again = probe_runs([simclr], k=5, train_samples=None)
    assert again[1].probe_acc == rows[1].probe_acc and again[1].knn_acc == rows[1].knn_acc


def test_probe_command(runs, tmp_path, capsys) -> None:
    simclr, _ = runs
    out = tmp_path / "probe.json"
    assert main(["probe", str(simclr), "--knn", "3", "--train-samples", "500",
                 "--out", str(out)]) == 0  # fmt: skip
    text = capsys.readouterr().out
    assert "linear probe" in text and "3-NN" in text and "random" in text
    rows = json.loads(out.read_text())
    assert [r["weights"] for r in rows] == ["trained", "random"]
    assert main(["probe", str(tmp_path)]) == 2  # not a run directory: one line, exit 2
    assert "not a run directory" in capsys.readouterr().err
    assert main(["probe", str(simclr), "--knn", "0"]) == 2
    assert "--knn must be at least 1" in capsys.readouterr().err


def test_features_are_the_heads_input() -> None:
    torch.manual_seed(0)
    model = create_model("resnet_small", widths=[8, 16, 16]).eval()
    x = torch.randn(3, 1, 28, 28)
    by_hand = model.head[:3](model.features(x))  # pool, flatten, dropout: the Linear's input
    assert torch.allclose(feature_fn(model)(x), by_hand)
    simclr = create_model("simclr", encoder_options={"widths": [8, 16, 16]}).eval()
    assert torch.equal(feature_fn(simclr)(x), simclr.encode(x))


def test_probes_on_separable_and_random_features() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 300)
    centres = rng.normal(size=(3, 8)) * 4
    x = centres[y] + rng.normal(size=(300, 8))
    train, test = (x[:200], y[:200]), (x[200:], y[200:])
    assert linear_probe(train, test) > 0.95 and knn_accuracy(train, test, 5) > 0.95
    noise = rng.normal(size=(300, 8))  # features that carry no label information: ~chance
    train, test = (noise[:200], y[:200]), (noise[200:], y[200:])
    assert linear_probe(train, test) < 0.55 and knn_accuracy(train, test, 5) < 0.55
