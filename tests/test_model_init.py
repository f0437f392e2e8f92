"""``model.init``: weight initialisation schemes chosen in the recipe."""

from __future__ import annotations

import math

import pytest
import torch
import yaml

from core_support import SYNTH
from trainlab import ConfigError, create_model
from trainlab.cli.main import main
from trainlab.models.init import INITS, init_weights


@pytest.mark.parametrize("scheme", sorted(INITS))
def test_schemes_give_their_statistics(scheme: str) -> None:
    torch.manual_seed(0)
    model = create_model("mlp", in_features=512, hidden=[512], num_classes=10, norm="batch")
    before = model.net[1].weight.clone()
    init_weights(model, scheme, std=0.05)
    w = model.net[1].weight.detach()  # (512, 512): fan_in = fan_out = 512
    if scheme == "default":
        assert torch.equal(w, before)
        return
    expected_std = {
        "xavier_uniform": math.sqrt(2 / 1024), "xavier_normal": math.sqrt(2 / 1024),
        "kaiming_uniform": math.sqrt(2 / 512), "kaiming_normal": math.sqrt(2 / 512),
        "kaiming_uniform_fan_out": math.sqrt(2 / 512), "kaiming_normal_fan_out": math.sqrt(2 / 512),
        "orthogonal": math.sqrt(1 / 512), "normal": 0.05,
    }[scheme]  # fmt: skip
    assert float(w.std()) == pytest.approx(expected_std, rel=0.05)
    assert torch.count_nonzero(model.net[-1].bias) == 0  # biases zeroed
    assert torch.all(model.net[2].weight == 1)  # batch norm scale untouched
    if scheme == "orthogonal":
        torch.testing.assert_close(w @ w.T, torch.eye(512), atol=1e-4, rtol=0)


def test_recipe_init_is_applied_and_saved(recipe, tmp_path, capsys) -> None:
    run = tmp_path / "run"
    path = str(recipe(SYNTH))
    assert main(["train", path, "--run-dir", str(run), "model.init=orthogonal"]) == 0
    cfg = yaml.safe_load((run / "config.yaml").read_text())
    assert cfg["model"]["init"] == "orthogonal" and cfg["model"]["hidden"] == [32]
    assert main(["train", path, "--run-dir", str(tmp_path / "bad"), "model.init=xavier"]) == 2
    assert not (tmp_path / "bad").exists()
    assert "model.init: unknown scheme 'xavier'" in capsys.readouterr().err
    with pytest.raises(ConfigError):
        init_weights(torch.nn.Linear(2, 2), "zeros")
