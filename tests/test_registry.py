from __future__ import annotations

import pytest

from trainlab import ConfigError, create_model, list_models
from trainlab.registry import Registry


def test_unknown_name_suggests_and_lists() -> None:
    reg: Registry = Registry("widget")
    reg.register("resnet18")(lambda: None)
    reg.register("vgg16")(lambda: None)
    with pytest.raises(ConfigError) as e:
        reg.get("resnet19", where="model.name")
    msg = str(e.value)
    assert msg.startswith("model.name: unknown widget 'resnet19'")
    assert "did you mean 'resnet18'" in msg and "valid: resnet18, vgg16" in msg


def test_duplicate_and_uppercase_keys_refused() -> None:
    reg: Registry = Registry("widget")
    reg.register("a")(lambda: 1)
    with pytest.raises(ValueError, match="already registered"):
        reg.register("a")(lambda: 2)
    with pytest.raises(ValueError, match="lowercase"):
        reg.register("Big")


def test_create_model_validates_options() -> None:
    assert {"mlp", "lenet5", "resnet_small"} <= set(list_models())
    with pytest.raises(ConfigError, match=r"model\.widht: unknown option .*did you mean 'widths'"):
        create_model("resnet_small", widht=[8, 8, 8])
    with pytest.raises(ConfigError, match=r"model\.dropout: .*got 'lots'"):
        create_model("mlp", dropout="lots")
    m = create_model("mlp", hidden=["16"], in_features=4, num_classes=2)  # "16" → 16
    assert m.net[1].out_features == 16


def test_models_command_lists_counts_and_options(capsys) -> None:
    from trainlab.cli.main import main

    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert "resnet50" in out and "25,557,032" in out  # torchvision's count
    assert main(["models", "resnet_small"]) == 0
    out = capsys.readouterr().out
    assert "widths" in out and "[16, 48, 96]" in out
    assert main(["models", "resnet_smal"]) == 2
    assert "did you mean 'resnet_small'" in capsys.readouterr().err
