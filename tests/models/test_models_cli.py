"""``trainlab models``: counts under num_classes=/in_channels= overrides, every option (init
included) and docstrings shown as written, not eaten as rich markup."""

from __future__ import annotations

import pytest

from trainlab.cli.main import main
from trainlab.errors import ConfigError
from trainlab.models.catalog import count_parameters, model_options, parse_overrides


def test_overrides_change_the_parameter_count_where_a_model_takes_them() -> None:
    assert count_parameters("lenet5") == 61_706  # 1 channel, 10 classes
    # 3 input channels: the first conv gains 2 · 6 · 5 · 5 weights
    assert count_parameters("lenet5", {"in_channels": 3}) == 61_706 + 300
    # vgg11 defaults to 1000 classes: at 10 its last layer shrinks by 990 · 4097
    assert count_parameters("vgg11", {"num_classes": 10}) == count_parameters("vgg11") - 990 * 4097
    # an option a model does not take is left out for that model, not an error
    assert count_parameters("lenet5", {"width": 3}) == 61_706


def test_parse_overrides_reads_yaml_scalars_and_refuses_other_words() -> None:
    assert parse_overrides(["num_classes=10", "batch_norm=true"]) == {
        "num_classes": 10,
        "batch_norm": True,
    }
    with pytest.raises(ConfigError, match="option=value"):
        parse_overrides(["num_classes"])


def test_options_include_the_model_section_keys() -> None:
    rows, _ = model_options("lenet5")
    names = [r[0] for r in rows]
    # The model section's own keys close the list, in the schema's order.
    from trainlab.config.schema import ModelSection

    section = [k for k in ModelSection.model_fields if k != "name"]
    assert {"init", "init_std", "init_from"} <= set(section)
    assert names[-len(section):] == section
    assert "xavier_uniform" in rows[names.index("init")][1]
    assert {"norm", "norm_position", "conv_bn", "fc_bn"} <= set(names)


def test_cli_shows_brackets_and_counts_with_overrides(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # two models in the table keep the test fast (every model takes ~10 s on a busy CPU)
    monkeypatch.setattr("trainlab.models.catalog.list_models", lambda: ["lenet5", "vgg"])
    assert main(["models", "vgg"]) == 0
    out = capsys.readouterr().out
    assert "[[convs, channels], ...]" in " ".join(out.split())
    assert main(["models", "num_classes=10", "in_channels=3"]) == 0
    out = capsys.readouterr().out
    assert "num_classes=10, in_channels=3" in " ".join(out.split())
    assert "62,006" in out  # lenet5 with 3 channels
    assert main(["models", "lenet5", "in_channels=3"]) == 0
    assert "init_from" in capsys.readouterr().out
