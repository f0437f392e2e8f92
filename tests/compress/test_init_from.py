"""``model.init_from``: transfer by name and shape, head replaced, mismatches named."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from trainlab.cli.main import main
from trainlab.config.load import load_config
from trainlab.deploy import dir_digest
from trainlab.errors import ConfigError
from trainlab.experiment import build_experiment
from trainlab.train.checkpoint import resolve_checkpoint

THREE_CLASSES = """
name: transfer
seed: 1
data: {name: synthetic, num_classes: 3, shape: [1, 8, 8], n_train: 96, n_val: 24, n_test: 24,
       batch_size: 32}
model: {name: resnet_small, widths: [8, 16, 16], blocks: [1, 1], init_from: SOURCE}
optim: {name: sgd, lr: 0.05, momentum: 0.9}
train: {epochs: 1, precision: fp32, threads: 1, tensorboard: false, report: false, norms: false}
"""


def test_transfer_to_other_classes_replaces_the_head(digits_run: Path, tmp_path: Path) -> None:
    before = dir_digest(digits_run)
    recipe = tmp_path / "t.yaml"
    recipe.write_text(THREE_CLASSES.replace("SOURCE", str(digits_run)))
    run = tmp_path / "run"
    assert main(["train", str(recipe), "--run-dir", str(run), "--no-progress"]) == 0
    report = json.loads((run / "init_from.json").read_text())
    assert report["new"] == [] and report["skipped"] == []
    assert [r.split(" ")[0] for r in report["head_replaced"]] == ["head.3.weight", "head.3.bias"]
    assert "head.3.weight [10, 16] -> [3, 16]" in report["head_replaced"][0]
    # Before any training the loaded tensors equal the source's.
    exp = build_experiment(load_config(recipe))
    src = load_file(str(resolve_checkpoint(digits_run, "best") / "model.safetensors"))
    own = exp.model.state_dict()
    assert torch.equal(own["features.0.0.weight"], src["features.0.0.weight"])
    assert own["head.3.weight"].shape == (3, 16)
    assert dir_digest(digits_run) == before


def test_mismatch_outside_the_head_names_the_tensor(digits_run: Path, tmp_path: Path) -> None:
    src = load_file(str(resolve_checkpoint(digits_run, "best") / "model.safetensors"))
    src["features.2.0.weight"] = torch.zeros(16, 8, 5, 5)
    path = tmp_path / "w.safetensors"
    save_file(src, str(path))
    recipe = tmp_path / "t.yaml"
    recipe.write_text(THREE_CLASSES.replace("SOURCE", str(path)))
    with pytest.raises(ConfigError, match=r"tensor 'features\.2\.0\.weight' has shape"):
        build_experiment(load_config(recipe))


def test_pth_state_dict_loads_with_weights_only(digits_run: Path, tmp_path: Path) -> None:
    src = load_file(str(resolve_checkpoint(digits_run, "best") / "model.safetensors"))
    pth = tmp_path / "w.pth"
    torch.save({"state_dict": src, "epoch": 3}, pth)
    recipe = tmp_path / "t.yaml"
    recipe.write_text(THREE_CLASSES.replace("SOURCE", str(pth)))
    exp = build_experiment(load_config(recipe))
    assert torch.equal(exp.model.state_dict()["features.0.0.weight"], src["features.0.0.weight"])
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"garbage")
    recipe.write_text(THREE_CLASSES.replace("SOURCE", str(bad)))
    with pytest.raises(ConfigError, match="cannot read weights"):
        build_experiment(load_config(recipe))


def test_unfreeze_at_epoch_trains_the_backbone_from_then_on(digits_run: Path,
                                                             tmp_path: Path) -> None:  # fmt: skip
    recipe = tmp_path / "t.yaml"
    text = THREE_CLASSES.replace("SOURCE", str(digits_run)).replace("epochs: 1", "epochs: 2")
    recipe.write_text(text.replace("optim: {name: sgd,", "optim: {freeze: [features.], name: sgd,"))
    run = tmp_path / "run"
    assert main(["train", str(recipe), "train.unfreeze_at_epoch=1", "train.keep_checkpoints=3",
                 "--run-dir", str(run), "--no-progress"]) == 0  # fmt: skip
    src = load_file(str(resolve_checkpoint(digits_run, "best") / "model.safetensors"))
    steps = sorted(p for p in (run / "checkpoints").glob("step-*"))
    first, second = (load_file(str(p / "model.safetensors")) for p in steps[-2:])
    key = "features.2.0.weight"
    assert torch.equal(first[key], src[key])  # epoch 1: frozen, not even weight decay
    assert not torch.equal(second[key], src[key])  # epoch 2: trained
    assert not torch.equal(first["head.3.weight"], second["head.3.weight"])


def test_unfreeze_needs_a_frozen_prefix(digits_run: Path, tmp_path: Path) -> None:
    recipe = tmp_path / "t.yaml"
    recipe.write_text(THREE_CLASSES.replace("SOURCE", str(digits_run)))
    with pytest.raises(ConfigError, match="nothing is frozen"):
        main_args = [str(recipe), "train.unfreeze_at_epoch=1"]
        from trainlab.run import train_run

        train_run(main_args[0], main_args[1:], run_dir=tmp_path / "r", progress=False)
    assert not (tmp_path / "r").exists()
