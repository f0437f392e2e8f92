"""The `image_folder` source on tiny PNGs: transforms, splits, workers, corrupt files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from trainlab.data.base import DATA
from trainlab.data.images import ImageFolderData, ImageTransforms, worker_budget
from trainlab.errors import DataError


def make_folder(root: Path, per_class: int = 8, size: tuple[int, int] = (12, 10)) -> Path:
    rng = np.random.default_rng(0)
    for c, name in enumerate(["cat", "dog", "emu"]):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            arr = (rng.random((size[1], size[0], 3)) * 60 + 60 * c).astype(np.uint8)
            Image.fromarray(arr).save(root / name / f"{i}.png")
    return root


def build(root: Path, **kw: object) -> ImageFolderData:
    # Streaming (the file-backed path) unless a test asks otherwise: tests/data/test_image_cache.py
    # covers the decoded-once path.
    m = DATA.get("image_folder")(root=str(root), **{"num_workers": 0, "cache": "never", **kw})
    m.setup("cpu")
    return m


def test_shapes_splits_and_train_stats(tmp_path: Path) -> None:
    m = build(
        make_folder(tmp_path / "imgs"),
        batch_size=4,
        transforms=ImageTransforms(
            resize=8,
            crop=8,
            crop_padding=1,
            flip=True,
            rotation=10,
            color_jitter=0.2,
            random_erasing=0.5,
        ),
    )
    assert m.num_classes == 3 and m.classes == ["cat", "dog", "emu"]
    assert m.input_shape == (3, 8, 8) and sum(m.sizes.values()) == 24
    files = [set(p for p, _ in v) for v in m.split_samples.values()]
    assert not (files[0] & files[1] or files[0] & files[2] or files[1] & files[2])
    x, y = next(m.loader("train").iter_epoch(0))
    assert x.shape == (4, 3, 8, 8) and x.dtype == torch.float32 and y.dtype == torch.int64
    xv = torch.cat([x for x, _ in m.loader("val").iter_epoch(0)])
    assert abs(float(xv.mean())) < 1.0  # normalised with statistics from train
    order = [y.tolist() for _, y in m.loader("train").iter_epoch(3)]
    assert order == [y.tolist() for _, y in m.loader("train").iter_epoch(3)]  # seeded order
    assert len(list(m.loader("train").iter_epoch(0, start=2))) == len(m.loader("train")) - 2


def test_with_a_worker_process(tmp_path: Path) -> None:
    m = build(
        make_folder(tmp_path / "imgs"),
        num_workers=1,
        batch_size=6,
        transforms=ImageTransforms(flip=True),
    )
    ld = m.loader("train")
    ys = [torch.cat([y for _, y in ld.iter_epoch(e)]) for e in (0, 1)]  # persistent workers
    assert sorted(ys[0].tolist()) == sorted(ys[1].tolist()) and len(ys[0]) == m.sizes["train"]


def test_worker_budget_never_exceeds_cores() -> None:
    assert worker_budget(64) <= max(0, len(__import__("os").sched_getaffinity(0)) - 1)
    assert worker_budget(0) == 0


def test_corrupt_and_truncated_images(tmp_path: Path) -> None:
    root = make_folder(tmp_path / "imgs")
    (root / "dog" / "bad.png").write_bytes(b"not a png at all")
    with pytest.raises(DataError, match=r"dog/bad\.png: cannot read image"):
        build(root)
    with pytest.warns(UserWarning, match=r"skipped 1 unreadable image\(s\).*dog/bad\.png"):
        m = build(root, on_error="skip")
    assert m.describe()["skipped"] == 1 and sum(m.sizes.values()) == 24
    good = (root / "cat" / "0.png").read_bytes()
    (root / "dog" / "bad.png").write_bytes(good[: len(good) // 2])  # truncated mid-stream
    with pytest.raises(DataError, match=r"dog/bad\.png: cannot read image"):
        build(root)


def test_corrupt_image_found_while_loading_names_the_file(tmp_path: Path) -> None:
    root = make_folder(tmp_path / "imgs")
    m = build(root, verify=False)
    victim = m.split_samples["val"][0][0]
    Path(victim).write_bytes(b"garbage")
    with pytest.raises(DataError, match=f"{victim}: cannot read image"):
        list(m.loader("val").iter_epoch(0))


def test_empty_and_missing_folders(tmp_path: Path) -> None:
    (tmp_path / "empty" / "cat").mkdir(parents=True)
    with pytest.raises(DataError, match="empty: no images found"):
        build(tmp_path / "empty")
    with pytest.raises(DataError, match="not a folder"):
        build(tmp_path / "nowhere")


# -- pre-split folders: root/train/<class>, root/val/<class>, root/test/<class> -----------------


def make_presplit(root: Path, splits: dict[str, list[str]], per_class: int = 6) -> Path:
    """``splits`` maps a split folder to its class folders; each image's red channel encodes
    its class (``60 × index in the sorted union of names``) so labels can be checked."""
    names = sorted({c for cs in splits.values() for c in cs})
    rng = np.random.default_rng(1)
    for split, classes in splits.items():
        for name in classes:
            (root / split / name).mkdir(parents=True)
            for i in range(per_class):
                arr = (rng.random((6, 6, 3)) * 20).astype(np.uint8)
                arr[..., 0] = 60 * names.index(name)
                Image.fromarray(arr).save(root / split / name / f"{i}.png")
    return root


def test_presplit_folders_share_the_train_class_mapping(tmp_path: Path) -> None:
    # val lacks 'cat': torchvision's ImageFolder on val alone would call 'dog' class 0.
    root = make_presplit(
        tmp_path / "ds",
        {"train": ["cat", "dog", "emu"], "val": ["dog", "emu"], "test": ["cat", "emu"]},
    )
    m = build(root, transforms=ImageTransforms(normalize=False))
    assert m.layout == "splits" and m.classes == ["cat", "dog", "emu"]
    assert m.sizes == {"train": 18, "val": 12, "test": 12}
    for split, samples in m.split_samples.items():
        assert all(Path(p).parts[-3] == split for p, _ in samples)  # nothing moved across
        assert all(m.classes[y] == Path(p).parent.name for p, y in samples)
    for split in ("train", "val", "test"):
        for x, y in m.loader(split).iter_epoch(0):
            red = (x[:, 0].mean((1, 2)) * 255 / 60).round().long()  # class encoded in pixels
            assert torch.equal(red, y)


def test_presplit_missing_splits_are_carved_from_train(tmp_path: Path) -> None:
    root = make_presplit(tmp_path / "a", {"train": ["cat", "dog"], "test": ["cat", "dog"]}, 10)
    m = build(root, val_fraction=0.2)
    assert m.sizes == {"train": 16, "val": 4, "test": 20}
    train, val = ({p for p, _ in m.split_samples[k]} for k in ("train", "val"))
    assert not train & val and all("/train/" in p for p in train | val)
    assert sorted(y for _, y in m.split_samples["val"]) == [0, 0, 1, 1]  # stratified
    only = build(make_presplit(tmp_path / "b", {"train": ["cat", "dog"]}, 10))
    assert only.layout == "splits" and only.sizes == {"train": 14, "val": 3, "test": 3}


def test_presplit_errors_name_the_folder(tmp_path: Path) -> None:
    root = make_presplit(tmp_path / "c", {"train": ["cat", "dog"], "val": ["cat", "fox"]})
    with pytest.raises(DataError, match=r"c/val/fox: class 'fox' is not in the train split"):
        build(root)
    odd = make_presplit(tmp_path / "d", {"train": ["cat", "dog"], "validation": ["cat"]})
    with pytest.raises(DataError, match=r"d/validation: unexpected folder next to train/"):
        build(odd)
    # Told that the top level holds classes, 'train' and 'validation' are two classes.
    assert build(odd, layout="classes", val_fraction=0.3, test_fraction=0.3).classes == [
        "train",
        "validation",
    ]
    with pytest.raises(DataError, match="layout=splits needs a 'train' folder"):
        build(make_folder(tmp_path / "e"), layout="splits")
    empty = make_presplit(tmp_path / "f", {"train": ["cat", "dog"]})
    (empty / "test" / "cat").mkdir(parents=True)
    with pytest.raises(DataError, match=r"f/test: no images found"):
        build(empty)


def test_presplit_corrupt_image_skipped_in_val(tmp_path: Path) -> None:
    root = make_presplit(tmp_path / "g", {"train": ["cat", "dog"], "val": ["cat", "dog"]})
    (root / "val" / "dog" / "bad.png").write_bytes(b"nope")
    with pytest.raises(DataError, match=r"val/dog/bad\.png: cannot read image"):
        build(root)
    with pytest.warns(UserWarning, match=r"skipped 1 unreadable image\(s\)"):
        m = build(root, on_error="skip")
    assert m.sizes["val"] == 12 and m.describe()["skipped_files"][0].endswith("bad.png")
