"""The task recipes in recipes/: valid as written (fast), and each trains end to end (slow)."""

from __future__ import annotations

import json

import pytest
from task_support import REPO

from trainlab.cli.main import main
from trainlab.config.load import load_config
from trainlab.experiment import check_config

# recipe → (metric in summary["test"], threshold, "max" | "min") after the full recipe
RECIPES = {
    "forecast_demand": ("test/r2", 0.5, "max"),
    "text_classification": ("test/acc", 0.9, "max"),
    "seq2seq_reverse": ("test/token_acc", 0.9, "max"),
    "char_lm": ("test/ppl", 19.0, "min"),  # a character-frequency model: ≈ 19
    "autoencoder_digits": ("test/mse", 0.05, "min"),  # the mean image: ≈ 0.07
    "vae_digits": ("test/nelbo", 27.0, "min"),  # the mean image: ≈ 27 nats
    "gan_digits": ("test/mean_gap", 0.4, "min"),  # untrained: ≈ 0.6
    "triplet_digits": ("test/knn_acc", 0.9, "max"),
}


@pytest.mark.parametrize("name", [*RECIPES, "dcgan_fashion_mnist"])
def test_recipe_is_valid(name: str) -> None:
    check_config(load_config(REPO / "recipes" / f"{name}.yaml", []))


@pytest.mark.slow
@pytest.mark.parametrize("name", list(RECIPES))
def test_recipe_trains(name: str, tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(REPO)  # recipes name their data files relative to the repository root
    cfg = load_config(REPO / "recipes" / f"{name}.yaml", [])
    run = tmp_path / "run"
    args = ["train", f"recipes/{name}.yaml", "--run-dir", str(run), "--no-progress"]
    assert main(args) == 0
    key, threshold, mode = RECIPES[name]
    value = json.loads((run / "summary.json").read_text())["test"][key]
    assert value > threshold if mode == "max" else value < threshold, (key, value)
    if cfg.callbacks:  # the sample grids: inside the run directory, nowhere else
        assert list((run / "samples").glob("epoch-*.png"))
