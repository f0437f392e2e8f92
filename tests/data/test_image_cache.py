"""``data.cache`` of the `image_folder` source: decoded once, same tensors, exact resume, budget."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image
from test_image_folder import make_folder

from trainlab.data import folder_loader
from trainlab.data.base import DATA
from trainlab.data.image_cache import CachedTensorLoader, decode_images, plan_cache, stored_shape
from trainlab.data.images import ImageFolderData, ImageTransforms
from trainlab.errors import DataError

BATCHED = ImageTransforms(crop=10, crop_padding=2, flip=True)  # flip + shift: one gather
PER_SAMPLE = ImageTransforms(resize=8, crop=6, crop_padding=1, flip=True, rotation=15,
                             color_jitter=0.2, random_erasing=0.5)  # fmt: skip


def build(root: Path, cache: str = "auto", **kw: Any) -> ImageFolderData:
    m = DATA.get("image_folder")(
        root=str(root), cache=cache, **{"num_workers": 0, "batch_size": 4, **kw}
    )
    m.setup("cpu")
    return m


def batches(m: ImageFolderData, split: str, epoch: int = 0, start: int = 0) -> list[Any]:
    return list(m.loader(split).iter_epoch(epoch, start))


def same(a: list[Any], b: list[Any]) -> bool:
    return len(a) == len(b) and all(
        torch.equal(xa, xb) and torch.equal(ya, yb) for (xa, ya), (xb, yb) in zip(a, b, strict=True)
    )


@pytest.fixture(scope="module")
def imgs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_folder(tmp_path_factory.mktemp("cache") / "imgs", per_class=8, size=(10, 10))


def test_unaugmented_cached_batches_equal_streamed_ones_bitwise(imgs: Path) -> None:
    stream, cached = build(imgs, "never"), build(imgs)
    assert not stream.cache.cached and cached.cache.cached and cached.store
    assert isinstance(cached.loader("train"), CachedTensorLoader)
    assert cached.mean == stream.mean and cached.std == stream.std  # statistics: same images
    for split in ("train", "val", "test"):
        for epoch in (0, 3):  # the training order is the streaming permutation of each epoch
            assert same(batches(stream, split, epoch), batches(cached, split, epoch)), split


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_store_gives_the_cpu_batches(imgs: Path) -> None:
    m = build(imgs, transforms=BATCHED)
    ref = batches(m, "train", 1)
    m.setup("cuda")  # set up again on another device: the store follows
    got = batches(m, "train", 1)
    assert got[0][0].is_cuda and same(ref, [(x.cpu(), y.cpu()) for x, y in got])


def test_per_sample_transforms_give_the_streamed_tensors_without_opening_files(
    imgs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stream, cached = build(imgs, "never", transforms=PER_SAMPLE), build(imgs, transforms=PER_SAMPLE)
    assert cached.cache.augmentation == "per-sample torchvision"
    want = {s: batches(stream, s, 2) for s in ("train", "val")}

    def no_files(*_: Any) -> Any:
        raise AssertionError("a file was decoded after set-up")

    monkeypatch.setattr(folder_loader, "open_image", no_files)
    for split, ref in want.items():  # same per-sample seeds, same torchvision calls
        assert same(ref, batches(cached, split, 2)), split


def test_batched_augmentation_flips_and_shifts_each_decoded_image(imgs: Path) -> None:
    raw = {"normalize": False}  # values k/255 and a zero fill: compared exactly
    plain = build(imgs, "never", transforms=ImageTransforms(**raw))
    m = build(imgs, transforms=BATCHED.model_copy(update=raw))
    assert m.cache.augmentation == "batched"
    ref = torch.cat([x for x, _ in batches(plain, "train", 1)])  # same order, no augmentation
    got = torch.cat([x for x, _ in batches(m, "train", 1)])
    padded = torch.nn.functional.pad(ref, (2, 2, 2, 2))  # RandomCrop's zero padding
    flips = 0
    for a, b in zip(padded, got, strict=True):
        views = [(f, (a.flip(-1) if f else a)[:, dy : dy + 10, dx : dx + 10])
                 for f in (0, 1) for dy in range(5) for dx in range(5)]  # fmt: skip
        match = [f for f, v in views if torch.equal(v, b)]
        assert match, "an augmented image is no flip/shift of its decoded image"
        flips += match[0]
    assert 0 < flips < len(got)  # both outcomes occur (p = 0.5, 16 images)
    assert not same(batches(m, "train", 1), batches(m, "train", 2))  # new draws each epoch


def test_batched_draws_are_per_sample_and_resume_exactly(imgs: Path) -> None:
    m = build(imgs, transforms=BATCHED)
    full = batches(m, "train", 4)
    assert same(full[2:], batches(m, "train", 4, start=2))  # resumed mid-epoch
    assert same(full, batches(build(imgs, transforms=BATCHED), "train", 4))  # new process
    wide = build(imgs, transforms=BATCHED, batch_size=8)  # another batch size: same samples
    x4, y4 = (torch.cat(t) for t in zip(*full, strict=True))
    x8, y8 = (torch.cat(t) for t in zip(*batches(wide, "train", 4), strict=True))
    assert torch.equal(y4, y8) and torch.equal(x4, x8)


@pytest.mark.parametrize("mode", ["L", "RGB"])
@pytest.mark.parametrize("resize", [None, 7])
def test_decoding_equals_torchvision_to_image_and_resize(
    tmp_path: Path, mode: str, resize: int | None
) -> None:
    from torchvision.transforms import v2

    root = make_folder(tmp_path / "imgs", per_class=1, size=(12, 9))  # not square
    paths = sorted(str(p) for p in root.rglob("*.png"))
    steps = [v2.ToImage()] + ([v2.Resize(resize, antialias=True)] if resize else [])
    for path, (x, size) in zip(paths, decode_images(paths, mode, resize, 2), strict=True):
        image = Image.open(path).convert(mode)
        want = v2.Compose(steps)(image).as_subclass(torch.Tensor)
        assert size == (12, 9) and x.dtype == torch.uint8 and torch.equal(x, want)
        assert x.shape == stored_shape(path, mode, resize)


def test_budget_auto_streams_always_fails_never_streams(imgs: Path) -> None:
    small = build(imgs, "auto", cache_budget_mb=0.001)  # 24 images of 3×10×10 need ~7 KiB
    assert not small.cache.cached and not small.store
    assert "exceed the budget of" in small.cache.reason
    assert small.run_notes == [small.cache.line()] and "streamed from files" in small.run_notes[0]
    assert small.describe()["cache"]["cached"] is False
    with pytest.raises(DataError, match=r"data.cache: always, but the folder needs 24 images"):
        build(imgs, "always", cache_budget_mb=0.001)
    assert "caching is off" in build(imgs, "never").run_notes[0]
    roomy = build(imgs, "always", cache_budget_mb=1)
    assert roomy.cache.cached and "decoded once into memory" in roomy.run_notes[0]
    assert plan_cache("auto", 10_000, (1, 28, 28), 2.6, 27.0).cached  # 7.48 MiB × 3.6 fits
    assert not plan_cache("auto", 10_000, (1, 28, 28), 2.6, 26.9).cached


def test_images_of_different_sizes_stream_under_auto_and_fail_under_always(
    tmp_path: Path,
) -> None:
    root = make_folder(tmp_path / "imgs", per_class=6, size=(12, 12))
    Image.fromarray(np.zeros((16, 14, 3), np.uint8)).save(root / "cat" / "big.png")
    tf = ImageTransforms(crop=10)  # random crop in training: the train store would be ragged
    m = build(root, transforms=tf)
    assert not m.cache.cached and "differ in size" in m.cache.reason
    assert next(iter(m.loader("train").iter_epoch(0)))[0].shape == (4, 3, 10, 10)  # streamed
    with pytest.raises(DataError, match="data.cache: always, but the .* images differ in size"):
        build(root, "always", transforms=tf)


def test_unreadable_files_are_named_or_skipped_when_decoding_for_the_cache(
    tmp_path: Path,
) -> None:
    root = make_folder(tmp_path / "imgs", per_class=6, size=(10, 10))
    (root / "dog" / "bad.png").write_bytes(b"not a png")
    with pytest.raises(DataError, match=r"dog/bad\.png: cannot read image"):
        build(root)
    with pytest.warns(UserWarning, match="skipped 1 unreadable"):
        m = build(root, on_error="skip")
    assert m.cache.cached and m.describe()["skipped"] == 1 and sum(m.sizes.values()) == 18


def test_negative_budget_is_a_clear_error(imgs: Path) -> None:
    with pytest.raises(DataError, match="data.cache_budget_mb=-1"):
        DATA.get("image_folder")(root=str(imgs), cache_budget_mb=-1)


def test_resumed_cached_run_ends_with_the_uninterrupted_weights(
    imgs: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from safetensors.torch import load_file

    from trainlab.cli.main import main
    from trainlab.train.checkpoint import resolve_checkpoint

    recipe = tmp_path / "r.yaml"
    recipe.write_text(
        f"name: imgs\nseed: 0\n"
        f"data: {{name: image_folder, root: {imgs}, batch_size: 4, num_workers: 0,\n"
        "       transforms: {crop: 10, crop_padding: 2, flip: true}}\n"
        "model: {name: mlp, hidden: [8]}\n"
        "optim: {name: sgd, lr: 0.05, momentum: 0.9}\n"
        "train: {epochs: 2, log_every: 1, precision: fp32, tensorboard: false, report: false,\n"
        "        threads: 1}\n"
    )
    full, part = tmp_path / "full", tmp_path / "part"
    opts = ["--no-progress"]
    assert main(["train", str(recipe), "--run-dir", str(full), *opts]) == 0
    assert "data: image folder decoded once into memory, batched" in capsys.readouterr().err
    assert main(["train", str(recipe), "--run-dir", str(part), "train.max_steps=3", *opts]) == 0
    assert main(["train", "--resume", str(part), "train.max_steps=null", *opts]) == 0
    a = load_file(str(resolve_checkpoint(full) / "model.safetensors"))
    b = load_file(str(resolve_checkpoint(part) / "model.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
