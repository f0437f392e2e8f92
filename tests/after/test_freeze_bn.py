"""train.freeze_bn: batch norms of the frozen part keep their statistics while fine-tuning."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file

from core_support import SYNTH
from trainlab.cli.main import main
from trainlab.train.checkpoint import resolve_checkpoint

BN_MLP = SYNTH.replace(
    "model: {name: mlp, hidden: [32]}", "model: {name: mlp, hidden: [32, 16], norm: batch}"
)
FROZEN = "optim.freeze=[net.1., net.2.]"  # the first Linear and its batch norm


def train(recipe: Path, run: Path, *overrides: str) -> Path:
    code = main(["train", str(recipe), *overrides, "--run-dir", str(run), "--no-progress"])
    assert code == 0
    return run


def weights(run: Path) -> dict[str, torch.Tensor]:
    return load_file(str(resolve_checkpoint(run, "latest") / "model.safetensors"))


def test_frozen_part_keeps_its_batch_norm_statistics(recipe, tmp_path) -> None:
    path = recipe(BN_MLP)
    src = weights(train(path, tmp_path / "src"))
    init = f"model.init_from={tmp_path / 'src'}"
    # Fine-tuning on other data (another synthetic draw): the statistics would move.
    other = ["data.data_seed=1", init, FROZEN]
    kept = weights(train(path, tmp_path / "kept", *other, "train.freeze_bn=true"))
    moved = weights(train(path, tmp_path / "moved", *other))
    for buf in ("net.2.running_mean", "net.2.running_var", "net.2.num_batches_tracked"):
        assert torch.equal(kept[buf], src[buf]), buf
        assert not torch.equal(moved[buf], src[buf]), buf
    assert torch.equal(kept["net.2.weight"], src["net.2.weight"])  # frozen by optim.freeze
    # The unfrozen norm trains and updates its statistics as usual.
    assert not torch.equal(kept["net.5.running_mean"], src["net.5.running_mean"])
    assert not torch.equal(kept["net.4.weight"], src["net.4.weight"])


def test_freeze_bn_without_frozen_part_freezes_every_norm(recipe, tmp_path) -> None:
    path = recipe(BN_MLP)
    src = weights(train(path, tmp_path / "src"))
    init = f"model.init_from={tmp_path / 'src'}"
    run = train(path, tmp_path / "all", init, "data.data_seed=1", "train.freeze_bn=true")
    w = weights(run)
    for norm in ("net.2", "net.5"):
        assert torch.equal(w[f"{norm}.running_mean"], src[f"{norm}.running_mean"])
        assert not torch.equal(w[f"{norm}.weight"], src[f"{norm}.weight"])  # scales still train
    # with SWA, update_bn leaves the frozen statistics alone too
    swa = train(path, tmp_path / "swa", init, "data.data_seed=1", FROZEN, "train.freeze_bn=true",
                "train.epochs=3", "train.swa={start: 1, lr: 0.01}")  # fmt: skip
    s = weights(swa)
    assert torch.equal(s["net.2.running_var"], src["net.2.running_var"])
    assert not torch.equal(s["net.5.running_var"], src["net.5.running_var"])
    assert json.loads((swa / "summary.json").read_text())["best"]["epoch"] == 3
