"""Transfer learning: torchvision state dicts on disk, class subsets of Fashion-MNIST."""

from __future__ import annotations

import pytest
import torch

from core_support import needs_fmnist
from trainlab import create_model
from trainlab.compress.init_from import init_from, summary_line
from trainlab.errors import ConfigError
from trainlab.experiment import build_data


def test_torchvision_pth_loads_by_position_with_equal_outputs(tmp_path) -> None:
    torchvision = pytest.importorskip("torchvision")
    torch.manual_seed(0)
    tv = torchvision.models.resnet18(weights=None).eval()
    path = tmp_path / "resnet18.pth"
    torch.save(tv.state_dict(), path)  # what a user downloads: torchvision's own names
    model = create_model("resnet18", num_classes=1000, in_channels=3)
    report = init_from(model, path)  # torch.load(weights_only=True) inside
    assert report["by_position"] and len(report["loaded"]) == 122 and not report["new"]
    assert "matched by position" in summary_line(report)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(model.eval()(x), tv(x))
    # Another number of classes: everything but the head (trainlab's name: head.2).
    ten = create_model("resnet18", num_classes=10, in_channels=3)
    report = init_from(ten, path)
    assert len(report["loaded"]) == 120
    assert [r.split()[0] for r in report["head_replaced"]] == ["head.2.weight", "head.2.bias"]
    # The layout must match: a MobileNet's tensors never load into a ResNet by position.
    other = torchvision.models.mobilenet_v3_small(weights=None).state_dict()
    torch.save(other, tmp_path / "mobilenet.pth")
    with pytest.raises(ConfigError, match="no tensor matches"):
        init_from(ten, tmp_path / "mobilenet.pth")


def test_init_skip_leaves_a_same_shape_head_fresh(tmp_path) -> None:
    torch.manual_seed(0)
    src = create_model("mlp", in_features=8, hidden=[6], num_classes=3)
    torch.save(src.state_dict(), tmp_path / "src.pt")
    torch.manual_seed(1)
    dst = create_model("mlp", in_features=8, hidden=[6], num_classes=3)
    fresh = {k: v.clone() for k, v in dst.state_dict().items()}
    report = init_from(dst, tmp_path / "src.pt", skip=["net.4."])
    w = dst.state_dict()
    assert sorted(report["new"]) == ["net.4.bias", "net.4.weight"]
    assert torch.equal(w["net.4.weight"], fresh["net.4.weight"])
    assert torch.equal(w["net.1.weight"], src.state_dict()["net.1.weight"])


@needs_fmnist
def test_fashion_mnist_class_subset_is_relabelled_in_every_split() -> None:
    data = build_data("fashion_mnist", classes=[9, 5, 7], subset=300, val_fraction=0.2)
    data.setup(torch.device("cpu"))
    assert data.num_classes == 3 and data.classes == ["Ankle boot", "Sandal", "Sneaker"]
    assert data.sizes == {"train": 240, "val": 60, "test": 3000}
    for split in ("train", "val", "test"):
        counts = torch.bincount(data.splits[split][1], minlength=3)
        assert len(counts) == 3 and (counts == counts[0]).all(), split  # stratified, balanced
    full = build_data("fashion_mnist", test_subset=None)
    full.setup(torch.device("cpu"))
    tx, ty = full.splits["test"]
    boots = tx[ty == 9]  # label 9 became 0, in the test file's order
    assert torch.equal(data.splits["test"][0][data.splits["test"][1] == 0], boots)
    assert data.describe()["num_classes"] == 3
    for bad in ([5], [5, 5], [3, 10]):
        with pytest.raises(ConfigError, match="data.classes"):
            build_data("fashion_mnist", classes=bad)


@needs_fmnist
@pytest.mark.slow
def test_transfer_recipe_pair_runs_and_records_what_loaded(tmp_path) -> None:
    """The shipped pair at a tiny scale (their README figures use the recipes as they are)."""
    import json
    from pathlib import Path

    from trainlab.cli.main import main

    recipes = Path(__file__).resolve().parents[2] / "recipes"
    common = ["train.threads=1", "train.tensorboard=false", "train.report=false", "--no-progress"]
    src = tmp_path / "fashion_0_4"
    assert main(["train", str(recipes / "transfer_pretrain_fashion_0_4.yaml"), "data.subset=2000",
                 "train.epochs=1", "--run-dir", str(src), *common]) == 0  # fmt: skip
    run = tmp_path / "ft"
    assert main(["train", str(recipes / "transfer_finetune_fashion_5_9.yaml"),
                 f"model.init_from={src}", "train.epochs=8", "--run-dir", str(run),
                 *common]) == 0  # fmt: skip
    report = json.loads((run / "init_from.json").read_text())
    assert sorted(report["new"]) == ["classifier.7.bias", "classifier.7.weight"]
    assert len(report["loaded"]) == 18
    assert json.loads((run / "summary.json").read_text())["test"]["test/acc"] > 0.4  # chance: 0.2
