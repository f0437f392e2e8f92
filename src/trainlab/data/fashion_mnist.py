"""Fashion-MNIST (Xiao et al., 2017) and MNIST (LeCun et al., 1998): 60k train / 10k test,
28×28 grey images, 10 classes, in the same four IDX files.

The files are looked up in order: ``data.root`` when given (and only there), the Debian
package's folder (Fashion-MNIST only: Debian ships no MNIST), then the user cache, which a
download (torchvision's) fills when the network allows.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import torch

from trainlab.data.augment import Augment
from trainlab.data.base import register_data
from trainlab.data.idx import read_idx_cached
from trainlab.data.memory import TensorDataModule
from trainlab.data.splits import train_val_indices
from trainlab.errors import DataError

__all__ = ["FashionMNIST", "fashion_mnist", "mnist", "find_files", "CLASSES", "FASHION", "MNIST"]

FILES = {
    "train_x": "train-images-idx3-ubyte.gz",
    "train_y": "train-labels-idx1-ubyte.gz",
    "test_x": "t10k-images-idx3-ubyte.gz",
    "test_y": "t10k-labels-idx1-ubyte.gz",
}
CLASSES = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
]
DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")
_FILES_HINT = "put the four files " + ", ".join(FILES.values()) + " in a folder and set data.root"


@dataclass(frozen=True)
class IdxSource:
    """Where one IDX dataset may be found and how to tell the user to get it."""

    title: str
    key: str  # cache folder name
    torchvision_class: str
    classes: tuple[str, ...]
    debian_dir: Path | None
    how_to: str


FASHION = IdxSource(
    "Fashion-MNIST", "fashion_mnist", "FashionMNIST", tuple(CLASSES), DEBIAN_DIR,
    "install Debian's package 'dataset-fashion-mnist' (apt-get install dataset-fashion-mnist), "
    "or " + _FILES_HINT,
)  # fmt: skip
MNIST = IdxSource(
    "MNIST", "mnist", "MNIST", tuple(str(d) for d in range(10)), None,
    "allow the network once (trainlab downloads the files with torchvision into the cache), "
    "or " + _FILES_HINT,
)  # fmt: skip
HOW_TO = FASHION.how_to


def cache_dir(source: IdxSource = FASHION) -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "trainlab" / source.key


def _complete(folder: Path) -> bool:
    return all((folder / f).is_file() for f in FILES.values())


def find_files(root: str | None, download: bool, source: IdxSource = FASHION) -> Path:
    """The folder that holds the four files, downloading into the cache if allowed."""
    if root is not None:
        folder = Path(root).expanduser()
        if not _complete(folder):
            missing = [f for f in FILES.values() if not (folder / f).is_file()]
            raise DataError(f"data.root={root}: missing {', '.join(missing)}; {source.how_to}")
        return folder
    places = [p for p in (source.debian_dir, cache_dir(source)) if p is not None]
    for folder in places:
        if _complete(folder):
            return folder
    if download and not os.environ.get("TRAINLAB_OFFLINE"):
        return _download(cache_dir(source), source)
    where = " or ".join(str(p) for p in places)
    raise DataError(f"{source.title} not found in {where}; {source.how_to}")


def _download(folder: Path, source: IdxSource) -> Path:
    import torchvision.datasets as tvd

    try:
        getattr(tvd, source.torchvision_class)(str(folder / "tv"), train=True, download=True)
    except Exception as e:  # network errors come in many types; all mean the same here
        raise DataError(f"{source.title} download failed ({e}); {source.how_to}") from None
    raw = folder / "tv" / source.torchvision_class / "raw"
    folder.mkdir(parents=True, exist_ok=True)
    for f in FILES.values():
        os.replace(raw / f, folder / f)
    return folder


@lru_cache(maxsize=4)
def load_arrays(folder: str) -> dict[str, torch.Tensor]:
    """The four tensors, parsed once per process: images (N, 1, 28, 28) uint8, labels int64."""
    out = {k: read_idx_cached(Path(folder) / f) for k, f in FILES.items()}
    for split in ("train", "test"):
        x, y = out[f"{split}_x"], out[f"{split}_y"]
        if x.dim() != 3 or y.dim() != 1 or len(x) != len(y) or x.numel() == 0:
            raise DataError(f"{folder}: {split} images {tuple(x.shape)} and labels "
                            f"{tuple(y.shape)} do not match (N×H×W images, N labels)")  # fmt: skip
        if int(y.max()) > 9 or int(y.min()) < 0:
            bad = int(y.max()) if int(y.max()) > 9 else int(y.min())
            raise DataError(f"{folder}: {split} label {bad} out of range 0..9")
        out[f"{split}_x"] = x.unsqueeze(1)
        out[f"{split}_y"] = y.long()
    return out


class FashionMNIST(TensorDataModule):
    """Fashion-MNIST, or any dataset in the same four IDX files (``source``: MNIST)."""

    num_classes = 10

    def __init__(
        self,
        root: str | None,
        val_fraction: float,
        split_seed: int,
        subset: int | None,
        test_subset: int | None,
        download: bool,
        source: IdxSource = FASHION,
        resize: int | None = None,
        keep: list[int] | None = None,
        **kw: object,
    ) -> None:
        super().__init__(**kw)  # type: ignore[arg-type]
        self.source, self.resize, self.keep = source, resize, keep
        self.classes = list(source.classes)
        if keep is not None:  # data.classes: these labels only, renumbered 0..k-1 in this order
            self.classes = [source.classes[c] for c in keep]
            self.num_classes = len(keep)
        self.root, self.val_fraction, self.split_seed = root, val_fraction, split_seed
        self.subset, self.test_subset, self.download = subset, test_subset, download

    def load(self) -> None:
        arrays = load_arrays(str(find_files(self.root, self.download, self.source)))
        x, y = keep_classes(arrays["train_x"], arrays["train_y"], self.keep)
        test_x, test_y = keep_classes(arrays["test_x"], arrays["test_y"], self.keep)
        tr, va = train_val_indices(y, self.subset, self.val_fraction, self.split_seed)
        n_test = self.test_subset or len(test_y)
        self.splits = {
            "train": (x[tr], y[tr]),
            "val": (x[va], y[va]),
            "test": (test_x[:n_test], test_y[:n_test]),
        }
        if self.resize is not None and self.resize != x.shape[-1]:
            self.splits = {k: (resize_images(v[0], self.resize), v[1])
                           for k, v in self.splits.items()}  # fmt: skip


def keep_classes(
    x: torch.Tensor, y: torch.Tensor, keep: list[int] | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """The samples of the labels in ``keep``, relabelled 0..k-1 in ``keep``'s order.

    >>> keep_classes(torch.arange(4), torch.tensor([5, 0, 7, 5]), [5, 7])
    (tensor([0, 2, 3]), tensor([0, 1, 0]))
    """
    if keep is None:
        return x, y
    new = torch.full((10,), -1, dtype=torch.long)
    new[torch.tensor(keep)] = torch.arange(len(keep))
    mask = new[y] >= 0
    return x[mask], new[y[mask]]


def resize_images(x: torch.Tensor, side: int, chunk: int = 2048) -> torch.Tensor:
    """(N, C, H, W) uint8 images resized to side×side, bilinear (antialiased when shrinking),
    rounded back to uint8: once, in memory, so every epoch (and a resumed run) sees the same
    pixels. Chunked: 60k images at 224 px are 3 GB as uint8, 12 GB as float.

    >>> resize_images(torch.zeros(2, 1, 28, 28, dtype=torch.uint8), 56).shape
    torch.Size([2, 1, 56, 56])
    """
    out = torch.empty((len(x), x.shape[1], side, side), dtype=torch.uint8)
    for i in range(0, len(x), chunk):
        part = torch.nn.functional.interpolate(
            x[i : i + chunk].float(), size=(side, side), mode="bilinear", align_corners=False,
            antialias=side < x.shape[-1],
        )  # fmt: skip
        out[i : i + chunk] = part.round_().clamp_(0, 255).to(torch.uint8)
    return out


def _idx_data(source: IdxSource, opts: dict[str, object]) -> FashionMNIST:
    """The data module both registered builders return (their options are the same)."""
    val_fraction = float(opts["val_fraction"])  # type: ignore[arg-type]
    from trainlab.errors import ConfigError

    if not 0.0 < val_fraction < 1.0:
        raise ConfigError(f"data.val_fraction: must be between 0 and 1 (got {val_fraction})")
    if opts["resize"] is not None and not 8 <= int(opts["resize"]) <= 1024:  # type: ignore[arg-type]
        raise ConfigError(f"data.resize: a side between 8 and 1024 px (got {opts['resize']})")
    keep: list[int] | None = opts["classes"]  # type: ignore[assignment]
    if keep is not None and (len(set(keep)) != len(keep) or len(keep) < 2
                             or not all(0 <= c <= 9 for c in keep)):  # fmt: skip
        raise ConfigError(f"data.classes: two or more distinct labels within 0..9 (got {keep})")
    return FashionMNIST(
        opts["root"], val_fraction, opts["split_seed"], opts["subset"],  # type: ignore[arg-type]
        opts["test_subset"], opts["download"], source, opts["resize"],  # type: ignore[arg-type]
        keep, batch_size=opts["batch_size"], eval_batch_size=opts["eval_batch_size"],
        seed=opts["seed"], augment=opts["augment"],
    )  # fmt: skip


@register_data("fashion_mnist")
def fashion_mnist(
    *,
    root: str | None = None,
    batch_size: int = 256,
    eval_batch_size: int = 1000,
    val_fraction: float = 0.1,
    split_seed: int = 0,
    augment: Augment = Augment(),
    subset: int | None = None,
    test_subset: int | None = None,
    download: bool = True,
    seed: int = 0,
    resize: int | None = None,
    classes: list[int] | None = None,
) -> FashionMNIST:
    """Fashion-MNIST with a stratified, seeded validation split carved from the train set.

    ``subset`` keeps a stratified sample of that many training images (quick runs, tests);
    ``test_subset`` the first N test images; ``resize`` (e.g. 56, 96, 224) resizes every
    image once at load, bilinearly, for the textbook's higher-resolution models (set the
    model's ``image_size`` to the same side); ``classes`` (e.g. ``[5, 6, 7, 8, 9]``) keeps
    only those labels, renumbered 0..k-1 in the order given, in every split (transfer
    between class subsets).
    """
    return _idx_data(FASHION, locals())


@register_data("mnist")
def mnist(
    *,
    root: str | None = None,
    batch_size: int = 256,
    eval_batch_size: int = 1000,
    val_fraction: float = 0.1,
    split_seed: int = 0,
    augment: Augment = Augment(),
    subset: int | None = None,
    test_subset: int | None = None,
    download: bool = True,
    seed: int = 0,
    resize: int | None = None,
    classes: list[int] | None = None,
) -> FashionMNIST:
    """MNIST handwritten digits, read like Fashion-MNIST (same files, split and options).

    No flips for digits: a mirrored 2 is not a 2 (``augment.translate`` is fine).
    """
    return _idx_data(MNIST, locals())
