"""Image folders (``root/<class_name>/*.png|jpg``): torchvision ``ImageFolder`` + transforms v2.

Files are decoded per sample by ``DataLoader`` workers, so this is the path for data that does
not fit in memory. The folder is split into stratified, seeded train/val/test sets; every image
is checked once at setup (``verify``), so a corrupt or truncated file is reported by name before
training starts, or skipped and counted with ``on_error: skip``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field
from torch.utils.data import DataLoader, Dataset, Sampler

from trainlab.data.base import Batch, register_data
from trainlab.data.memory import epoch_seed
from trainlab.data.splits import check_fractions, holdout_split
from trainlab.errors import DataError

__all__ = [
    "ImageTransforms",
    "ImageFolderData",
    "FolderLoader",
    "image_folder",
    "build_transforms",
    "worker_budget",
]


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


def worker_budget(requested: int) -> int:
    """Loader workers such that workers + the main process never exceed the cores we may use
    (each worker runs torch with one thread: see :func:`_worker_init`)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(0, min(requested, (cores or 1) - 1))


def _worker_init(_: int) -> None:
    torch.set_num_threads(1)  # per-sample decoding gains nothing from intra-op threads


class _Files(Dataset[tuple[torch.Tensor, int]]):
    """(path, label) pairs → (image tensor, label); an unreadable file raises a one-line
    DataError naming it."""

    def __init__(
        self, samples: list[tuple[str, int]], transform: Callable[[Any], torch.Tensor], mode: str
    ) -> None:
        self.samples, self.transform, self.mode = samples, transform, mode

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        path, label = self.samples[i]
        return self.transform(open_image(path, self.mode)), label


def open_image(path: str, mode: str) -> Any:
    from PIL import Image

    try:
        with Image.open(path) as im:
            return im.convert(mode)  # convert() decodes fully: truncation shows up here
    except (OSError, SyntaxError, ValueError) as e:  # PIL's errors for bad/truncated files
        raise DataError(f"{path}: cannot read image ({e})") from None


class _EpochBatches(Sampler[list[int]]):
    """The batch order of one epoch, set before each pass (so persistent workers survive)."""

    def __init__(self, n: int, batch_size: int, shuffle: bool, seed: int) -> None:
        self.n, self.batch_size, self.shuffle, self.seed = n, batch_size, shuffle, seed
        self.epoch, self.start = 0, 0

    def __len__(self) -> int:
        return -(-self.n // self.batch_size) - self.start

    def __iter__(self) -> Iterator[list[int]]:
        order = torch.arange(self.n)
        if self.shuffle:
            gen = torch.Generator().manual_seed(epoch_seed(self.seed, self.epoch))
            order = torch.randperm(self.n, generator=gen)
        for b in range(self.start, -(-self.n // self.batch_size)):
            yield order[b * self.batch_size : (b + 1) * self.batch_size].tolist()


class FolderLoader:
    """A ``DataLoader`` over image files behind the :class:`~trainlab.data.base.Loader` contract.

    The sample order is a pure function of (seed, epoch); random transforms draw from the
    workers' generators, seeded by ``DataLoader`` from the epoch's seed.
    """

    def __init__(
        self,
        ds: _Files,
        batch_size: int,
        shuffle: bool,
        seed: int,
        workers: int,
        device: torch.device,
    ) -> None:
        self.batches = _EpochBatches(len(ds), batch_size, shuffle, seed)
        self.device, self.seed = device, seed
        self.gen = torch.Generator()
        cuda = device.type == "cuda"
        self.dl = DataLoader(
            ds,
            batch_sampler=self.batches,
            num_workers=workers,
            pin_memory=cuda,
            persistent_workers=workers > 0,
            worker_init_fn=_worker_init,
            generator=self.gen,
            prefetch_factor=2 if workers > 0 else None,
        )

    def __len__(self) -> int:
        return -(-self.batches.n // self.batches.batch_size)

    def iter_epoch(self, epoch: int, start: int = 0) -> Iterator[Batch]:
        self.batches.epoch, self.batches.start = epoch, start
        self.gen.manual_seed(epoch_seed(self.seed, epoch))
        try:
            for x, y in self.dl:
                yield x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)
        except DataError as e:  # from a worker the message carries a traceback: keep the gist
            raise DataError(str(e).strip().splitlines()[-1].removeprefix("DataError: ")) from None


class ImageFolderData:
    """``root/<class>/<image>`` split into train/val/test, decoded on the fly."""

    def __init__(self, root: str, transforms: ImageTransforms, opts: dict[str, Any]) -> None:
        self.root, self.transforms, self.opts = root, transforms, opts
        self.num_classes: int | None = None
        self.input_shape: tuple[int, ...] = ()
        self.sizes: dict[str, int] = {}
        self.classes: list[str] = []
        self.skipped: list[str] = []
        self.mean: list[float] | None = transforms.mean
        self.std: list[float] | None = transforms.std
        self.split_samples: dict[str, list[tuple[str, int]]] = {}
        self.device = torch.device("cpu")

    def setup(self, device: torch.device | str = "cpu") -> None:
        self.device = torch.device(device)
        if self.split_samples:
            return
        samples = self._scan()
        labels = np.array([y for _, y in samples])
        parts = holdout_split(
            labels,
            val_fraction=self.opts["val_fraction"],
            test_fraction=self.opts["test_fraction"],
            seed=self.opts["split_seed"],
            where=f"{self.root}",
            class_names=self.classes,
        )
        self.split_samples = {k: [samples[i] for i in v] for k, v in parts.items()}
        self.sizes = {k: len(v) for k, v in self.split_samples.items()}
        if self.transforms.normalize and self.mean is None:
            self.mean, self.std = self._stats()
        x0, _ = self._dataset("val")[0]
        self.input_shape = tuple(x0.shape)

    def _scan(self) -> list[tuple[str, int]]:
        from torchvision.datasets import ImageFolder

        try:
            folder = ImageFolder(self.root, loader=lambda p: p)  # lists files, decodes nothing
        except (FileNotFoundError, OSError) as e:
            raise DataError(f"{self.root}: no images found ({e})") from None
        self.classes = list(folder.classes)
        self.num_classes = len(self.classes)
        samples = [(p, int(y)) for p, y in folder.samples]
        if self.opts["verify"]:
            samples = self._verify(samples)
        return samples

    def _verify(self, samples: list[tuple[str, int]]) -> list[tuple[str, int]]:
        good = []
        for path, y in samples:
            try:
                open_image(path, self.opts["mode"])
                good.append((path, y))
            except DataError:
                if self.opts["on_error"] == "raise":
                    raise
                self.skipped.append(path)
        if not good:
            raise DataError(f"{self.root}: none of the {len(samples)} images could be read")
        return good

    def _stats(self) -> tuple[list[float], list[float]]:
        # Per-channel statistics of (up to) 256 training images, after resize/crop: train only.
        ds = _Files(
            self.split_samples["train"][:256],
            build_transforms(self.transforms, False, None, None),
            self.opts["mode"],
        )
        x = torch.stack([ds[i][0] for i in range(len(ds))])  # (n, C, H, W) in 0..1
        flat = x.transpose(0, 1).reshape(x.shape[1], -1)
        return flat.mean(1).tolist(), flat.std(1).clamp_min(1e-6).tolist()

    def _dataset(self, split: str) -> _Files:
        tf = build_transforms(self.transforms, split == "train", self.mean, self.std)
        return _Files(self.split_samples[split], tf, self.opts["mode"])

    def loader(self, split: str) -> FolderLoader:
        if split not in self.split_samples:
            raise KeyError(f"no split '{split}'; this data has {', '.join(self.split_samples)}")
        train = split == "train"
        bs = self.opts["batch_size"] if train else self.opts["eval_batch_size"]
        return FolderLoader(
            self._dataset(split),
            bs,
            train,
            self.opts["seed"],
            worker_budget(self.opts["num_workers"]),
            self.device,
        )

    def describe(self) -> dict[str, Any]:
        return {
            "num_classes": self.num_classes,
            "input_shape": list(self.input_shape),
            "sizes": self.sizes,
            "mean": self.mean,
            "std": self.std,
            "classes": self.classes,
            "skipped": len(self.skipped),
            "skipped_files": self.skipped[:20],
        }


@register_data("image_folder")
def image_folder(
    *,
    root: str,
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
    """Images in ``root/<class_name>/`` (png, jpg, …), one class per sub-folder.

    ``num_workers`` is capped so that workers + main process never exceed the usable cores.
    ``on_error: skip`` drops unreadable images at setup; ``describe()`` reports how many.
    """
    check_fractions(val_fraction, test_fraction)
    if not Path(root).expanduser().is_dir():
        raise DataError(f"data.root={root}: not a folder")
    opts = dict(
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
