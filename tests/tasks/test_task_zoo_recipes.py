"""The model-zoo recipes (CapsNet, RBM, DBN, AAE on Fashion-MNIST) train end to end (slow).

Their validity as written is checked by tests/test_family_recipes.py with every other recipe.
"""

from __future__ import annotations

import json

import pytest
from task_support import REPO

from trainlab.cli.main import main

# recipe → (overrides, [(metric in summary["test"], threshold, "max" | "min")…]); figures in
# the comments were measured with these overrides on a 2-core CPU.
ZOO = {
    # one epoch (~2 min idle): test/acc 0.835; chance 0.1
    "capsnet_fashion_mnist": (["train.epochs=1"], [("test/acc", 0.8, "max")]),
    # ~50 s: test/recon 0.0145; the mean image 0.087, the untrained RBM ≈ 0.2
    "rbm_fashion_mnist": ([], [("test/recon", 0.025, "min")]),
    # ~70 s: test/acc 0.861
    "dbn_fashion_mnist": ([], [("test/acc", 0.83, "max")]),
    # ~2 min idle: test/mse 0.014 (mean image 0.087), z gaps 0.07 / 0.05
    "aae_fashion_mnist": (
        [],
        [
            ("test/mse", 0.025, "min"),
            ("test/z_mean_gap", 0.3, "min"),
            ("test/z_std_gap", 0.3, "min"),
        ],
    ),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", list(ZOO))
def test_zoo_recipe_trains(name: str, tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(REPO)
    overrides, checks = ZOO[name]
    run = tmp_path / "run"
    args = ["train", f"recipes/{name}.yaml", *overrides, "train.report=false"]
    assert main([*args, "--run-dir", str(run), "--no-progress"]) == 0
    test = json.loads((run / "summary.json").read_text())["test"]
    for key, threshold, mode in checks:
        value = test[key]
        assert value > threshold if mode == "max" else value < threshold, (key, value)
