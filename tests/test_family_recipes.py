"""Every recipe in recipes/ is valid as written: registry names and options check out.

Only loads and checks configs (no data, no training), so it stays fast. The image-classification
families each have a ``recipes/<family>_fashion_mnist.yaml``; those are listed explicitly so a
missing one fails here rather than going unnoticed.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from trainlab.config.load import load_config
from trainlab.experiment import check_config

RECIPES = Path(__file__).resolve().parents[1] / "recipes"

# image-classification family → the model its Fashion-MNIST recipe trains
FAMILIES = {
    "fashion_mnist": "resnet_small",
    "lenet5_fashion_mnist": "lenet5",
    "mlp_fashion_mnist": "mlp",
    "alexnet_small_fashion_mnist": "alexnet_small",
    "vgg_small_fashion_mnist": "vgg_small",
    "nin_small_fashion_mnist": "nin_small",
    "googlenet_small_fashion_mnist": "googlenet_small",
    "resnet18_fashion_mnist": "resnet18",
    "densenet_small_fashion_mnist": "densenet_small",
    "regnet_fashion_mnist": "regnet",
    "vit_tiny_fashion_mnist": "vit_tiny",
}


@pytest.mark.parametrize("path", sorted(RECIPES.glob("*.yaml")), ids=lambda p: p.stem)
def test_every_recipe_is_valid(path: Path) -> None:
    cfg = load_config(path, [])
    check_config(cfg)
    assert cfg.name == path.stem  # a recipe is named after its file


@pytest.mark.parametrize("stem", list(FAMILIES))
def test_family_recipe(stem: str) -> None:
    cfg = load_config(RECIPES / f"{stem}.yaml", [])
    check_config(cfg)
    assert cfg.model.name == FAMILIES[stem]
    assert cfg.data.name == "fashion_mnist"
    assert cfg.task.name == "classification"
