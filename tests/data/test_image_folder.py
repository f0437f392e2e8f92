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
    m = DATA.get("image_folder")(root=str(root), **{"num_workers": 0, **kw})
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
