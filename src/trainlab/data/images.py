"""Image folders (``root/<class_name>/*.png|jpg``) with torchvision transforms v2.

Files are decoded per sample by ``DataLoader`` workers (:mod:`trainlab.data.folder_loader`), so
this is the path for data that does not fit in memory. Two layouts:

- ``root/<class>/…``: split into stratified, seeded train/val/test sets;
- ``root/train/<class>/…`` with optional ``root/val/…`` and ``root/test/…`` (detected when
  ``root/train`` exists, or ``layout: splits``): the train split's classes define the labels
  for all three, and a split that is not shipped is carved out of train with its fraction.

Every image is checked once at setup (``verify``), so a corrupt or truncated file is reported by
name before training starts, or skipped, counted and warned about with ``on_error: skip``.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field

from trainlab.data.base import register_data
from trainlab.data.folder_loader import (
    FileDataset,
    FolderLoader,
    dist_position,
    open_image,
    worker_budget,
)
from trainlab.data.splits import check_fractions, holdout_split, split_off
from trainlab.errors import DataError

__all__ = [
    "ImageTransforms",
    "ImageFolderData",
    "FolderLoader",
    "image_folder",
    "build_transforms",
    "worker_budget",
    "split_folders",
    "scan_classes",
]

SPLITS = ("train", "val", "test")
Samples = list[tuple[str, int]]  # (file path, class index)


class ImageTransforms(BaseModel):
    """Recipe options ``data.transforms``: a torchvision transforms v2 pipeline.

    Training applies resize → random crop → flip → rotation → colour jitter → normalise →
    random erasing; evaluation applies resize → centre crop → normalise.
    """

    model_config = ConfigDict(extra="forbid")

    resize: int | None = Field(None, ge=1)  # shorter side to this many pixels
    crop: int | None = Field(None, ge=1)  # square crop: random in training, centre otherwise
    crop_padding: int = Field(0, ge=0)  # zero padding before the random crop
    flip: bool = False  # horizontal flip with probability 0.5
    rotation: float = Field(0.0, ge=0.0, le=180.0)  # random rotation within ±degrees
    color_jitter: float = Field(0.0, ge=0.0)  # brightness/contrast/saturation strength
    normalize: bool = True  # with mean/std, or statistics of up to 256 training images
    mean: list[float] | None = None
    std: list[float] | None = None
    random_erasing: float = Field(0.0, ge=0.0, le=1.0)  # probability per image


def build_transforms(
    t: ImageTransforms, train: bool, mean: list[float] | None, std: list[float] | None
) -> Callable[[Any], torch.Tensor]:
    """PIL image → float32 tensor (C, H, W) with the enabled steps."""
    from torchvision.transforms import v2

    steps: list[Any] = [v2.ToImage()]
    if t.resize:
        steps.append(v2.Resize(t.resize, antialias=True))
    if t.crop and train:
        steps.append(v2.RandomCrop(t.crop, padding=t.crop_padding or None))
    elif t.crop:
        steps.append(v2.CenterCrop(t.crop))
    if train and t.flip:
        steps.append(v2.RandomHorizontalFlip())
    if train and t.rotation:
        steps.append(v2.RandomRotation(t.rotation))
    if train and t.color_jitter:
        c = t.color_jitter
        steps.append(v2.ColorJitter(brightness=c, contrast=c, saturation=c))
    steps.append(v2.ToDtype(torch.float32, scale=True))  # uint8 0..255 → float 0..1
    if mean is not None and std is not None:
        steps.append(v2.Normalize(mean, std))
    if train and t.random_erasing:
        steps.append(v2.RandomErasing(p=t.random_erasing))
    return v2.Compose(steps)


def split_folders(root: Path, layout: str) -> dict[str, Path] | None:
    """The pre-split folders ``root/train`` (+ ``val``, ``test`` where present), or None when
    ``root`` holds class folders. ``auto`` means pre-split exactly when ``root/train`` exists."""
    has_train = (root / "train").is_dir()
    if layout == "classes" or (layout == "auto" and not has_train):
        return None
    if not has_train:
        raise DataError(f"{root}: data.layout=splits needs a 'train' folder here")
    extra = sorted(
        p.name
        for p in root.iterdir()
        if p.is_dir() and p.name not in SPLITS and not p.name.startswith(".")
    )
    if extra:
        raise DataError(
            f"{root / extra[0]}: unexpected folder next to train/; pre-split image folders are "
            "named train, val and test (set data.layout: classes if these are class folders)"
        )
    return {s: root / s for s in SPLITS if (root / s).is_dir()}


def scan_classes(
    folder: Path, class_to_idx: dict[str, int] | None, allow_empty: bool
) -> tuple[dict[str, int], Samples]:
    """``folder/<class>/<image>`` as (path, label) pairs; nothing is decoded.

    Labels come from ``class_to_idx`` when given (the train split's), so every split shares
    one mapping; a class folder it lacks is a :class:`DataError` naming that folder.
    """
    from torchvision.datasets.folder import IMG_EXTENSIONS, find_classes, make_dataset

    try:
        classes, found = find_classes(folder)
        mapping = found if class_to_idx is None else class_to_idx
        extra = [c for c in classes if c not in mapping]
        if extra:
            raise DataError(
                f"{folder / extra[0]}: class '{extra[0]}' is not in the train split "
                f"(classes: {', '.join(mapping)}); every class needs training images"
            )
        chosen = {c: mapping[c] for c in classes}
        samples = make_dataset(folder, chosen, IMG_EXTENSIONS, allow_empty=allow_empty)
    except (FileNotFoundError, OSError) as e:  # no class folders, or a class without images
        raise DataError(f"{folder}: no images found ({e})") from None
    if not samples:
        raise DataError(f"{folder}: no images found")
    return mapping, [(p, int(y)) for p, y in samples]


class ImageFolderData:
    """``root/<class>/<image>`` split into train/val/test, or pre-split
    ``root/{train,val,test}/<class>/<image>``; decoded on the fly."""

    def __init__(self, root: str, transforms: ImageTransforms, opts: dict[str, Any]) -> None:
        self.root, self.transforms, self.opts = root, transforms, opts
        self.num_classes: int | None = None
        self.input_shape: tuple[int, ...] = ()
        self.sizes: dict[str, int] = {}
        self.classes: list[str] = []
        self.layout = ""  # "classes" or "splits", known after setup
        self.skipped: list[str] = []
        self.mean: list[float] | None = transforms.mean
        self.std: list[float] | None = transforms.std
        self.split_samples: dict[str, Samples] = {}
        self.device = torch.device("cpu")

    def setup(self, device: torch.device | str = "cpu") -> None:
        self.device = torch.device(device)
        if self.split_samples:
            return
        folders = split_folders(Path(self.root), self.opts["layout"])
        self.layout = "classes" if folders is None else "splits"
        self.split_samples = self._carve(self._scan(folders))
        self.sizes = {k: len(v) for k, v in self.split_samples.items()}
        if self.skipped:
            shown = ", ".join(self.skipped[:3]) + (", …" if len(self.skipped) > 3 else "")
            warnings.warn(
                f"{self.root}: skipped {len(self.skipped)} unreadable image(s) "
                f"(data.on_error: skip): {shown}",
                stacklevel=2,
            )
        if self.transforms.normalize and self.mean is None:
            self.mean, self.std = self._stats()
        x0, _ = self._dataset("val")[0]
        self.input_shape = tuple(x0.shape)

    def _scan(self, folders: dict[str, Path] | None) -> dict[str, Samples]:
        """Samples of each folder present (the whole root for class folders), verified."""
        train_dir = Path(self.root) if folders is None else folders["train"]
        mapping, train = scan_classes(train_dir, None, allow_empty=False)
        self.classes, self.num_classes = list(mapping), len(mapping)
        found = {"train": self._verify(train, train_dir)}
        for split, folder in (folders or {}).items():
            if split != "train":  # a class may lack val/test images, never train images
                found[split] = self._verify(scan_classes(folder, mapping, True)[1], folder)
        return found

    def _carve(self, found: dict[str, Samples]) -> dict[str, Samples]:
        """Each of val/test not shipped as a folder is split off train (stratified, seeded)."""
        missing = [s for s in SPLITS if s not in found]
        train = found["train"]
        labels = np.array([y for _, y in train])
        o, where = self.opts, self.root if self.layout == "classes" else f"{self.root}/train"
        if len(missing) == 2:
            parts = holdout_split(
                labels,
                val_fraction=o["val_fraction"],
                test_fraction=o["test_fraction"],
                seed=o["split_seed"],
                where=where,
                class_names=self.classes,
            )
            return {k: [train[i] for i in v] for k, v in parts.items()}
        for name in missing:  # at most one
            rest, part = split_off(
                labels, o[f"{name}_fraction"], name=name, seed=o["split_seed"], where=where,
                class_names=self.classes,
            )  # fmt: skip
            found = {**found, "train": [train[i] for i in rest], name: [train[i] for i in part]}
        return {s: found[s] for s in SPLITS}

    def _verify(self, samples: Samples, folder: Path) -> Samples:
        if not self.opts["verify"]:
            return samples
        good, sizes = [], {}
        for path, y in samples:
            try:
                sizes.setdefault(open_image(path, self.opts["mode"]).size, path)
                good.append((path, y))
            except DataError:
                if self.opts["on_error"] == "raise":
                    raise
                self.skipped.append(path)
        if not good:
            raise DataError(f"{folder}: none of the {len(samples)} images could be read")
        self._check_sizes(sizes, folder)
        return good

    def _check_sizes(self, sizes: dict[tuple[int, int], str], folder: Path) -> None:
        """Images of different sizes cannot form a batch unless the transforms make them equal
        (a crop; or a resize when every image is square)."""
        t = self.transforms
        if len(sizes) < 2 or t.crop or (t.resize and all(w == h for w, h in sizes)):
            return
        (a, pa), (b, pb) = list(sizes.items())[:2]
        n = min(min(a), min(b))
        raise DataError(
            f"{folder}: images of different sizes ({pa} is {a[0]}×{a[1]}, {pb} is {b[0]}×{b[1]}) "
            f"cannot be batched: set data.transforms.resize={n} and data.transforms.crop={n}"
        )

    def _stats(self) -> tuple[list[float], list[float]]:
        # Per-channel statistics of up to 256 training images (train only), after resize/crop;
        # evenly spaced, since the list is sorted by class.
        train = self.split_samples["train"]
        subset = train[:: max(1, len(train) // 256)][:256]
        ds = FileDataset(
            subset, build_transforms(self.transforms, False, None, None), self.opts["mode"]
        )
        x = torch.stack([ds[i][0] for i in range(len(ds))])  # (n, C, H, W) in 0..1
        flat = x.transpose(0, 1).reshape(x.shape[1], -1)
        return flat.mean(1).tolist(), flat.std(1).clamp_min(1e-6).tolist()

    def _dataset(self, split: str) -> FileDataset:
        train = split == "train"
        tf = build_transforms(self.transforms, train, self.mean, self.std)
        return FileDataset(
            self.split_samples[split], tf, self.opts["mode"], seed=self.opts["seed"], random=train
        )

    def loader(
        self, split: str, *, rank: int | None = None, world_size: int | None = None
    ) -> FolderLoader:
        """Batches of ``split``; under ``torch.distributed`` (or with ``rank``/``world_size``
        given) this rank's shard of them (see :mod:`trainlab.data.folder_loader`)."""
        if split not in self.split_samples:
            raise KeyError(f"no split '{split}'; this data has {', '.join(self.split_samples)}")
        if (rank is None) != (world_size is None):
            raise ValueError("give both rank and world_size, or neither")
        if rank is None or world_size is None:
            rank, world_size = dist_position()
        train = split == "train"
        return FolderLoader(
            self._dataset(split),
            self.opts["batch_size"] if train else self.opts["eval_batch_size"],
            train,
            self.opts["seed"],
            worker_budget(self.opts["num_workers"]),
            self.device,
            rank=rank,
            world=world_size,
        )

    def describe(self) -> dict[str, Any]:
        return {
            "num_classes": self.num_classes,
            "input_shape": list(self.input_shape),
            "sizes": self.sizes,
            "mean": self.mean,
            "std": self.std,
            "classes": self.classes,
            "layout": self.layout,
            "skipped": len(self.skipped),
            "skipped_files": self.skipped[:20],
        }


@register_data("image_folder")
def image_folder(
    *,
    root: str,
    layout: Literal["auto", "classes", "splits"] = "auto",
    transforms: ImageTransforms = ImageTransforms(),
    mode: Literal["RGB", "L"] = "RGB",
    val_fraction: float = 0.15,
    test_fraction: float = 0.15,
    split_seed: int = 0,
    batch_size: int = 64,
    eval_batch_size: int = 256,
    num_workers: int = 2,
    verify: bool = True,
    on_error: Literal["raise", "skip"] = "raise",
    seed: int = 0,
) -> ImageFolderData:
    """Images in ``root/<class_name>/`` (png, jpg, …), one class per sub-folder, or pre-split
    in ``root/train/<class_name>/`` (+ optional ``val/``, ``test/``).

    ``layout``: ``auto`` (pre-split when ``root/train`` exists), ``classes`` or ``splits``.
    ``val_fraction``/``test_fraction`` size the splits carved out of train (all of them for
    class folders; only those without a folder when pre-split).
    ``num_workers`` is capped so that workers + main process never exceed the usable cores.
    ``on_error: skip`` drops unreadable images at setup, warns, and ``describe()`` counts them.
    Random transforms are seeded per (seed, epoch, sample): a resumed epoch sees the same
    augmented images, with any number of workers.

    >>> # data: {name: image_folder, root: flowers/, transforms: {crop: 64, flip: true}}
    """
    check_fractions(val_fraction, test_fraction)
    if not Path(root).expanduser().is_dir():
        raise DataError(f"data.root={root}: not a folder")
    opts = dict(
        layout=layout,
        mode=mode,
        val_fraction=val_fraction,
        test_fraction=test_fraction,
        split_seed=split_seed,
        batch_size=batch_size,
        eval_batch_size=eval_batch_size,
        num_workers=num_workers,
        verify=verify,
        on_error=on_error,
        seed=seed,
    )
    return ImageFolderData(str(Path(root).expanduser()), transforms, opts)
