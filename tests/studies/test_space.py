"""Search-space files: parsing, checks against the recipe, sampling and overrides."""

from __future__ import annotations

import math
import random

import optuna
import pytest
import yaml

from trainlab.config.load import apply_overrides, load_config
from trainlab.errors import ConfigError
from trainlab.studies.space import (
    Dim,
    as_overrides,
    grid_values,
    load_space,
    parse_space,
    sample_random,
    suggest,
)

RECIPE = """
name: digits_mlp
data: {name: digits, batch_size: 64}
model: {name: mlp, hidden: [16]}
task: {name: classification}
optim: {name: sgd, lr: 0.05}
train: {epochs: 2, threads: 1}
"""

SPACE = """
optim.lr: {type: float, low: 1.0e-3, high: 1.0, log: true}
optim.momentum: {type: float, low: 0.0, high: 0.9, step: 0.3}
model.hidden.0: {type: int, low: 8, high: 64, step: 8}
data.batch_size: {type: int, low: 16, high: 256, log: true}
model.act: [relu, gelu]
"""


@pytest.fixture
def cfg(recipe):
    return load_config(recipe(RECIPE))


def test_load_space_reads_every_kind(cfg, tmp_path):
    (tmp_path / "space.yaml").write_text(SPACE)
    space = load_space(tmp_path / "space.yaml", cfg)
    assert space["optim.lr"] == Dim("optim.lr", "float", low=1e-3, high=1.0, log=True)
    assert space["model.hidden.0"].step == 8 and space["model.hidden.0"].type == "int"
    assert space["model.act"].choices == ("relu", "gelu")
    assert space["data.batch_size"].log is True


@pytest.mark.parametrize(
    "text, words",
    [
        ("optim.lrr: {type: float, low: 0.1, high: 1}", ["optim.lrr", "did you mean 'lr'"]),
        ("optim.lr: {type: float, low: 1, high: 0.1}", ["optim.lr", "greater than high"]),
        ("optim.lr: {type: float, low: 0, high: 1, log: true}", ["optim.lr", "low > 0"]),
        ("optim.lr: {type: float, low: a, high: 1}", ["optim.lr.low", "a number"]),
        ("optim.lr: {type: float, low: 0.1, high: 1, lgo: true}", ["optim.lr.lgo", "unknown"]),
        ("optim.lr: {type: floaty, low: 1, high: 2}", ["optim.lr.type", "categorical"]),
        ("model.hidden.0: {type: int, low: 1.5, high: 3}", ["model.hidden.0.low", "integer"]),
        ("model.widthx: {type: int, low: 1, high: 3}", ["model.widthx", "unknown option"]),
        ("train.epochs: [1, 2, 0]", ["train.epochs", "refuses train.epochs=0"]),
        ("model.hidden.0: {type: int, low: 8, high: 60, step: 8}", ["multiple of step"]),
        ("optim.lr: {type: float, low: 0.1, high: 1, log: true, step: 0.1}", ["combined"]),
        ("model.act: []", ["model.act.choices", "non-empty"]),
        ("model.act: {type: categorical, choices: [[1, 2]]}", ["not a scalar"]),
        ("optim.lr: 0.1", ["optim.lr", "expected a mapping"]),
        # refused only when the model or optimizer is built
        ("model.act: [relu, no_such_act]", ["refuses model.act=no_such_act", "activation"]),
        ("optim.lr: {type: float, low: -1, high: 1}", ["refuses optim.lr=-1.0", "ValueError"]),
        ("[1, 2]", ["non-empty mapping"]),
    ],
)
def test_bad_space_names_file_and_key(cfg, tmp_path, text, words):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as e:
        load_space(path, cfg)
    msg = str(e.value)
    assert msg.startswith(str(path)) and "\n" not in msg
    for w in words:
        assert w in msg


def test_missing_and_invalid_files(cfg, tmp_path):
    with pytest.raises(ConfigError, match="space file not found"):
        load_space(tmp_path / "nope.yaml", cfg)
    (tmp_path / "broken.yaml").write_text("optim.lr: {type: float\n")
    with pytest.raises(ConfigError, match="invalid YAML"):
        load_space(tmp_path / "broken.yaml", cfg)


def test_sample_random_stays_in_range_and_on_the_lattice(cfg):
    space = parse_space(yaml.safe_load(SPACE), cfg)
    rng = random.Random(3)
    draws = [sample_random(space, rng) for _ in range(300)]
    lrs = [d["optim.lr"] for d in draws]
    assert all(1e-3 <= x <= 1.0 for x in lrs)
    # log-uniform: about a third of the draws in each decade
    assert 60 < sum(x < 1e-2 for x in lrs) < 140
    assert {d["model.hidden.0"] for d in draws} == set(range(8, 65, 8))
    assert {d["optim.momentum"] for d in draws} == {0.0, 0.3, 0.6, 0.9}
    assert all(16 <= d["data.batch_size"] <= 256 for d in draws)
    assert {d["model.act"] for d in draws} == {"relu", "gelu"}
    assert sample_random(space, random.Random(7)) == sample_random(space, random.Random(7))


def test_suggest_uses_optuna_distributions(cfg):
    space = parse_space(yaml.safe_load(SPACE), cfg)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    trial = study.ask()
    params = suggest(space, trial)
    dists = trial.distributions
    assert isinstance(dists["optim.lr"], optuna.distributions.FloatDistribution)
    assert dists["optim.lr"].log and dists["model.hidden.0"].step == 8
    assert isinstance(dists["model.act"], optuna.distributions.CategoricalDistribution)
    assert set(params) == set(space)


@pytest.mark.parametrize(
    "value", [0.001, 1e-12, 3, "relu", "true", "null", "1e-3", True, None, "a b: c", 2.5e10]
)
def test_as_overrides_round_trips_through_yaml(value):
    [item] = as_overrides({"model.x": value})
    back = apply_overrides({}, [item])["model"]["x"]
    assert back == value and type(back) is type(value)


def test_grid_values_needs_steps_for_floats(cfg):
    space = parse_space(yaml.safe_load(SPACE), cfg)
    with pytest.raises(ConfigError, match="optim.lr: the grid sampler needs a step"):
        grid_values(space)
    del space["optim.lr"], space["data.batch_size"]
    grid = grid_values(space)
    assert grid["optim.momentum"] == [0.0, 0.3, 0.6, 0.9]
    assert grid["model.hidden.0"] == [8, 16, 24, 32, 40, 48, 56, 64]
    assert math.prod(len(v) for v in grid.values()) == 64
