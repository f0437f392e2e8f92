"""Image folders (``root/<class_name>/*.png|jpg``) with torchvision transforms v2.

A folder that fits a memory budget is decoded once into memory and batched like the built-in
datasets (``cache: auto``, :mod:`trainlab.data.image_cache`); larger ones (or ``cache: never``)
are decoded per sample by ``DataLoader`` workers (:mod:`trainlab.data.folder_loader`). Two
layouts:

- ``root/<class>/…``: split into stratified, seeded train/val/test sets;
- ``root/train/<class>/…`` with optional ``root/val/…`` and ``root/test/…`` (detected when
  ``root/train`` exists, or ``layout: splits``): the train split's classes define the labels
  for all three, and a split that is not shipped is carved out of train with its fraction.

Every image is checked once at setup (``verify``, or decoding it for the cache), so a corrupt or
truncated file is reported by name before training starts, or skipped, counted and warned about
with ``on_error: skip``.
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
from trainlab.data.image_cache import (
    CachedDataset,
    CachedTensorLoader,
    CacheMode,
    CachePlan,
    batched_augment,
    budget_mb,
    decode_images,
    decode_threads,
    plan_cache,
    stack_images,
    stored_shape,
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
        self.cache = CachePlan(opts.get("cache", "never"), False, "not set up")
        self.store: dict[str, torch.Tensor] = {}  # decoded (N, C, H, W) uint8 per split, CPU
        self.on_device: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}  # batched splits
        self._decoded: dict[str, torch.Tensor] = {}  # path → image, until stacked
        self._shape: tuple[int, int, int] = (0, 0, 0)  # first image's (C, H, W), once planned

    def setup(self, device: torch.device | str = "cpu") -> None:
        self.device = torch.device(device)
        if self.split_samples:  # set up already: only the batched stores follow the device
            self.on_device = {k: (x.to(self.device), y.to(self.device))
                              for k, (x, y) in self.on_device.items()}  # fmt: skip
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
        if self._decoded:
            self._build_store()
        if self.transforms.normalize and self.mean is None:
            self.mean, self.std = self._stats()
        x0, _ = self._dataset("val")[0]
        self.input_shape = tuple(x0.shape)

    @property
    def run_notes(self) -> list[str]:
        """Lines for the run's log: which path the images take, and why."""
        return [self.cache.line()]

    def _scan(self, folders: dict[str, Path] | None) -> dict[str, Samples]:
        """Samples of each folder present (the whole root for class folders), verified."""
        train_dir = Path(self.root) if folders is None else folders["train"]
        mapping, train = scan_classes(train_dir, None, allow_empty=False)
        self.classes, self.num_classes = list(mapping), len(mapping)
        listed = {"train": (train, train_dir)}
        for split, folder in (folders or {}).items():
            if split != "train":  # a class may lack val/test images, never train images
                listed[split] = (scan_classes(folder, mapping, True)[1], folder)
        self._plan([s for samples, _ in listed.values() for s in samples])
        return {split: self._verify(samples, folder) for split, (samples, folder) in listed.items()}

    def _plan(self, samples: Samples) -> None:
        """Cache or stream (``data.cache``), decided from the first readable image's size."""
        o, t = self.opts, self.transforms
        if o["cache"] == "never":
            self.cache = CachePlan("never", False, "caching is off")
            return
        shape = None
        for path, _ in samples:
            try:
                shape = stored_shape(path, o["mode"], t.resize)
                break
            except DataError:
                continue  # reported by name when the images are decoded
        if shape is None:
            return
        self._shape = shape
        aug = batched_augment(t, shape)
        _, h, w = shape
        pad = aug.translate if aug else 0
        copies = (1 + aug.flip) * (h + 2 * pad) * (w + 2 * pad) / (h * w) if aug else 0.0
        budget = budget_mb(o["cache_budget_mb"], self.device)
        self.cache = plan_cache(o["cache"], len(samples), shape, copies, budget)

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
        if not self.opts["verify"] and not self.cache.cached:
            return samples
        good, sizes = [], {}
        for (path, y), read in zip(samples, self._read([p for p, _ in samples]), strict=True):
            if isinstance(read, DataError):
                if self.opts["on_error"] == "raise":
                    raise read
                self.skipped.append(path)
                continue
            sizes.setdefault(read, path)
            good.append((path, y))
        if not good:
            raise DataError(f"{folder}: none of the {len(samples)} images could be read")
        self._check_sizes(sizes, folder)
        return good

    def _read(self, paths: list[str]) -> list[tuple[int, int] | DataError]:
        """Each image's size, or the error naming it; decoded into ``_decoded`` when caching."""
        mode = self.opts["mode"]
        if not self.cache.cached:
            return [_size_or_error(p, mode) for p in paths]
        out = decode_images(paths, mode, self.transforms.resize, decode_threads(self._shape))
        for path, r in zip(paths, out, strict=True):
            if not isinstance(r, DataError):
                self._decoded[path] = r[0]
        return [r if isinstance(r, DataError) else r[1] for r in out]

    def _build_store(self) -> None:
        """One uint8 tensor per split (evaluation splits centre-cropped), or back to streaming
        when a split's images differ in size."""
        decoded, self._decoded = self._decoded, {}
        for split, samples in self.split_samples.items():
            crop = None if split == "train" else self.transforms.crop
            x = stack_images([decoded.pop(p) for p, _ in samples], crop)  # frees as it goes
            if x is None:
                self.store = {}
                why = f"the {split} images differ in size after resize/crop"
                if self.cache.mode == "always":
                    raise DataError(f"{self.root}: data.cache: always, but {why}: set "
                                    "data.transforms resize and crop, or cache: auto")  # fmt: skip
                self.cache = CachePlan(self.cache.mode, False, f"{why} (a split is one tensor)")
                return
            self.store[split] = x
        aug = batched_augment(self.transforms, self.store["train"].shape[1:])
        kind = "batched" if aug is not None else "per-sample torchvision"
        self.cache.augmentation = "no" if aug and not (aug.flip or aug.translate) else kind
        for split, x in self.store.items():
            if split != "train" or aug is not None:  # batched: the store goes to the device
                y = torch.tensor([label for _, label in self.split_samples[split]])
                self.on_device[split] = (x.to(self.device), y.to(self.device))

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
        n = len(self.split_samples["train"])
        picks = range(n)[:: max(1, n // 256)][:256]
        ds = self._make_dataset("train", build_transforms(self.transforms, False, None, None))
        x = torch.stack([ds[i][0] for i in picks])  # (n, C, H, W) in 0..1
        flat = x.transpose(0, 1).reshape(x.shape[1], -1)
        return flat.mean(1).tolist(), flat.std(1).clamp_min(1e-6).tolist()

    def _dataset(self, split: str) -> FileDataset:
        train = split == "train"
        tf = build_transforms(self.transforms, train, self.mean, self.std)
        return self._make_dataset(split, tf, random=train)

    def _make_dataset(
        self, split: str, tf: Callable[[Any], torch.Tensor], random: bool = False
    ) -> FileDataset:
        samples, seed = self.split_samples[split], self.opts["seed"]
        # Cached images are already resized (and cropped, for evaluation): the same steps again
        # are identities in torchvision (same size: returned as is), so the pipeline is one.
        if self.store:
            return CachedDataset(self.store[split], samples, tf, seed=seed, random=random)
        return FileDataset(samples, tf, self.opts["mode"], seed=seed, random=random)

    def loader(
        self, split: str, *, rank: int | None = None, world_size: int | None = None
    ) -> FolderLoader | CachedTensorLoader:
        """Batches of ``split``; under ``torch.distributed`` (or with ``rank``/``world_size``
        given) this rank's shard of them (see :mod:`trainlab.data.folder_loader`). A cached
        split with batched augmentation yields whole batches, which the trainer shards."""
        if split not in self.split_samples:
            raise KeyError(f"no split '{split}'; this data has {', '.join(self.split_samples)}")
        if (rank is None) != (world_size is None):
            raise ValueError("give both rank and world_size, or neither")
        if split in self.on_device and (world_size or 1) == 1:
            return self._memory_loader(split)
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

    def _memory_loader(self, split: str) -> CachedTensorLoader:
        x, y = self.on_device[split]
        train = split == "train"
        aug = batched_augment(self.transforms, x.shape[1:]) if train else None
        return CachedTensorLoader(
            x,
            y,
            batch_size=self.opts["batch_size"] if train else self.opts["eval_batch_size"],
            shuffle=train,
            seed=self.opts["seed"],
            augment=aug,
            mean=self.mean,
            std=self.std,
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
            "cache": {**self.cache.as_dict(), "note": self.cache.line()},
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
    cache: CacheMode = "auto",
    cache_budget_mb: float | None = None,
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
    ``cache``: ``auto`` decodes the folder once into memory when it fits the budget, else
    streams; ``always`` fails when it does not fit; ``never`` streams.
    ``cache_budget_mb``: that budget in MiB (default 25 % of the RAM available at set-up, and
    of the free GPU memory on CUDA; the store counts with its padded/mirrored training copy).
    Cached evaluation
    batches equal the streamed ones bitwise; cached training with only flip/padded-crop
    augmentation draws other flips and shifts (same distributions), see
    :mod:`trainlab.data.image_cache`. The run's log says which path was taken and why.

    >>> # data: {name: image_folder, root: flowers/, transforms: {crop: 64, flip: true}}
    """
    check_fractions(val_fraction, test_fraction)
    if cache_budget_mb is not None and cache_budget_mb < 0:
        raise DataError(f"data.cache_budget_mb={cache_budget_mb}: must be ≥ 0 (MiB)")
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
        cache=cache,
        cache_budget_mb=cache_budget_mb,
    )
    return ImageFolderData(str(Path(root).expanduser()), transforms, opts)


def _size_or_error(path: str, mode: str) -> tuple[int, int] | DataError:
    try:
        return open_image(path, mode).size
    except DataError as e:
        return e
