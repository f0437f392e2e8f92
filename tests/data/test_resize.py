"""``data.resize`` for fashion_mnist / mnist: every image resized once at load, in memory."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from tests.data.test_data_contract import write_idx_dataset

from trainlab.data.fashion_mnist import resize_images
from trainlab.errors import ConfigError
from trainlab.experiment import build_data


def _data(tmp_path: Path, **kw: object):  # noqa: ANN202 - a FashionMNIST module
    root = write_idx_dataset(tmp_path / "idx", n_train=120, n_test=30)
    data = build_data("mnist", root=str(root), download=False, batch_size=16, **kw)
    data.setup("cpu")
    return data


def test_resize_changes_every_split_once_and_batches_follow(tmp_path: Path) -> None:
    plain, big = _data(tmp_path), _data(tmp_path, resize=56)
    for split in ("train", "val", "test"):
        x0, y0 = plain.splits[split]
        x1, y1 = big.splits[split]
        assert x1.shape == (len(x0), 1, 56, 56) and x1.dtype == torch.uint8
        assert torch.equal(y0, y1)  # same samples, same order: only the pixels change
        # bilinear ×2 keeps each image's mean brightness (to rounding and border effects)
        torch.testing.assert_close(x1.float().mean((1, 2, 3)), x0.float().mean((1, 2, 3)),
                                   atol=1.0, rtol=0)  # fmt: skip
    assert big.input_shape == (1, 56, 56)
    x, _ = next(iter(big.loader("train").iter_epoch(0)))
    assert x.shape == (16, 1, 56, 56) and x.dtype == torch.float32
    # the same module twice gives the same tensors: a resumed run reads the same pixels
    again = _data(tmp_path, resize=56)
    assert torch.equal(again.splits["train"][0], big.splits["train"][0])


def test_resize_keeps_constant_images_constant_and_shrinks_with_antialias() -> None:
    flat = torch.full((3, 1, 28, 28), 77, dtype=torch.uint8)
    assert (resize_images(flat, 96) == 77).all()
    stripes = torch.zeros(2, 1, 28, 28, dtype=torch.uint8)
    stripes[..., ::4] = 255  # one bright column in four: a shrink by 4 should give 255 / 4
    small = resize_images(stripes, 7, chunk=1)
    assert small.shape == (2, 1, 7, 7)
    # plain bilinear would sample between columns 4i+1 and 4i+2 and see only black
    inner = small[..., 1:-1].float()
    assert (inner - 63.75).abs().max() < 2


def test_resize_out_of_range_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="data.resize"):
        build_data("fashion_mnist", resize=4)


@pytest.mark.slow  # three short runs: ~15 s on a busy 2-core machine
def test_a_resized_run_resumes_mid_epoch_to_the_same_weights(tmp_path: Path) -> None:
    from safetensors.torch import load_file

    from trainlab.run import train_run
    from trainlab.train.checkpoint import resolve_checkpoint

    root = write_idx_dataset(tmp_path / "idx", n_train=160, n_test=20)
    recipe = tmp_path / "r.yaml"
    recipe.write_text(f"""
name: resized
seed: 0
data: {{name: mnist, root: {root}, download: false, resize: 36, batch_size: 16,
       augment: {{translate: 2}}}}
model: {{name: lenet5, image_size: 36}}
optim: {{name: sgd, lr: 0.05, momentum: 0.9}}
train: {{epochs: 2, log_every: 3, precision: fp32, tensorboard: false, report: false,
        norms: false}}
""")
    full = train_run(recipe, run_dir=tmp_path / "full", progress=False)
    part = tmp_path / "part"
    train_run(recipe, ["train.max_steps=13"], run_dir=part, progress=False)  # 9 steps / epoch
    resumed = train_run(None, ["train.max_steps=null"], resume=part, progress=False)
    assert resumed["steps"] == full["steps"] == 18
    a = load_file(str(resolve_checkpoint(tmp_path / "full") / "model.safetensors"))
    b = load_file(str(resolve_checkpoint(part) / "model.safetensors"))
    assert all(torch.equal(a[k], b[k]) for k in a)
