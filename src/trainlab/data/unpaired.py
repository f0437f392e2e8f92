"""Two image domains for unpaired translation (CycleGAN), with the true translation known.

Domain A is Fashion-MNIST; domain B is a fixed transformation ``T`` of it (``invert``: 255 − x;
``dilate``: thicker strokes, a max filter of side ``dilate_size``; ``rotate90``: a quarter turn
counter-clockwise). A translator learns A → B without ever seeing a pair, and is scored on
held-out images against ``T(x)``, which the data knows.

``view: unpaired`` (the CycleGAN view): each sample stacks one A image and one B image along
the channels, ``x`` (N, 2C, H, W) in [-1, 1] (the generators' tanh range; channels ``:C`` are
A, ``C:`` are B).

- training split: the training images are shuffled (``split_seed``) and cut into two disjoint
  halves; A images come from the first half, B images are ``T`` of the second half, so no
  training sample holds an image and its own translation (``halves`` keeps the indices);
- validation and test splits: each held-out image ``x`` is stacked with its true translation
  ``T(x)`` — for scoring only.

``y`` is the class of the A image (float32: the view declares no classes, it is not
classification data; the cyclegan task's judge compares it with its predictions).

``view: a`` and ``view: b`` are ordinary one-domain classification data (all training images,
plain or transformed; normalised like ``fashion_mnist``): a classifier trained on ``view: b``
judges translations (the cyclegan task's ``judge``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from trainlab.data.augment import Augment
from trainlab.data.base import register_data
from trainlab.data.memory import TensorDataModule
from trainlab.errors import ConfigError

__all__ = ["TRANSFORMS", "VIEWS", "UnpairedImages", "transform_images", "unpaired_fashion_mnist"]

TRANSFORMS = ("invert", "dilate", "rotate90")
VIEWS = ("unpaired", "a", "b")
Arrays = dict[str, torch.Tensor]  # train_x, train_y, test_x, test_y; images (N, C, H, W) uint8


def transform_images(x: torch.Tensor, transform: str, dilate_size: int = 3) -> torch.Tensor:
    """The fixed map A → B on uint8 images (N, C, H, W).

    >>> x = torch.zeros(1, 1, 5, 5, dtype=torch.uint8); x[0, 0, 2, 2] = 200
    >>> int(transform_images(x, "dilate")[0, 0].gt(0).sum())   # one pixel → a 3×3 blot
    9
    >>> int(transform_images(x, "invert")[0, 0, 0, 0])
    255
    """
    if transform == "invert":
        return 255 - x
    if transform == "dilate":
        # Max filter (grey-scale dilation); odd side keeps the image centred.
        pad = dilate_size // 2
        return F.max_pool2d(x.float(), dilate_size, stride=1, padding=pad).to(torch.uint8)
    if transform == "rotate90":
        return torch.rot90(x, 1, dims=(-2, -1)).contiguous()
    raise ConfigError(f"data.transform: '{transform}'; valid: {', '.join(TRANSFORMS)}")


def _fashion_arrays(root: str | None, download: bool) -> Arrays:
    from trainlab.data.fashion_mnist import find_files, load_arrays

    return load_arrays(str(find_files(root, download)))


class UnpairedImages(TensorDataModule):
    """Domain A = the source images, domain B = ``transform`` of them (see the module doc).

    ``arrays`` gives the images directly (tests, other datasets); None reads Fashion-MNIST.

    >>> g = torch.Generator().manual_seed(0)
    >>> imgs = torch.randint(0, 256, (40, 1, 8, 8), generator=g, dtype=torch.uint8)
    >>> arrays = {"train_x": imgs[:30], "train_y": torch.arange(30) % 3,
    ...           "test_x": imgs[30:], "test_y": torch.arange(10) % 3}
    >>> data = UnpairedImages(arrays, transform="invert", val_fraction=0.2, batch_size=4)
    >>> data.setup("cpu"); data.sizes, data.input_shape
    ({'train': 12, 'val': 6, 'test': 10}, (2, 8, 8))
    """

    num_classes: int | None = 10

    def __init__(
        self,
        arrays: Arrays | None = None,
        *,
        transform: str = "dilate",
        dilate_size: int = 3,
        view: str = "unpaired",
        root: str | None = None,
        download: bool = True,
        val_fraction: float = 0.1,
        split_seed: int = 0,
        subset: int | None = None,
        test_subset: int | None = None,
        batch_size: int = 64,
        eval_batch_size: int = 500,
        seed: int = 0,
        augment: Augment | None = None,
    ) -> None:
        _check(transform, dilate_size, view, val_fraction)
        super().__init__(batch_size=batch_size, eval_batch_size=eval_batch_size, seed=seed,
                         augment=augment, normalize=view != "unpaired")  # fmt: skip
        self.arrays, self.root, self.download = arrays, root, download
        self.transform, self.dilate_size, self.view = transform, dilate_size, view
        self.val_fraction, self.split_seed = val_fraction, split_seed
        self.subset, self.test_subset = subset, test_subset
        # The unpaired view is translation data, not classification: no classes are declared
        # (so no chance-level checks on the CycleGAN loss) and the source image's class comes
        # as a float target, which only a judge reads.
        self.num_classes = None if view == "unpaired" else 10
        self.halves: tuple[np.ndarray, np.ndarray] | None = None
        self.domain_channels: int | None = None  # C of one domain (unpaired view only)

    def to_b(self, x: torch.Tensor) -> torch.Tensor:
        """``T``: domain A images (uint8) → their true domain B images."""
        return transform_images(x, self.transform, self.dilate_size)

    def load(self) -> None:
        from trainlab.data.splits import train_val_indices

        arrays = self.arrays
        if arrays is None:
            arrays = _fashion_arrays(self.root, self.download)
        x, y = arrays["train_x"], arrays["train_y"]
        tr, va = train_val_indices(y, self.subset, self.val_fraction, self.split_seed)
        n_test = self.test_subset or len(arrays["test_y"])
        test = (arrays["test_x"][:n_test], arrays["test_y"][:n_test])
        if self.view != "unpaired":
            f = self.to_b if self.view == "b" else (lambda v: v)
            self.splits = {"train": (f(x[tr]), y[tr]), "val": (f(x[va]), y[va]),
                           "test": (f(test[0]), test[1])}  # fmt: skip
            return
        order = np.random.default_rng(self.split_seed).permutation(tr)
        half = len(order) // 2
        a, b = np.sort(order[:half]), np.sort(order[half : 2 * half])
        self.halves = (a, b)
        self.splits = {  # labels as float: no classes are declared (see __init__)
            "train": (torch.cat([x[a], self.to_b(x[b])], dim=1), y[a].float()),
            "val": (torch.cat([x[va], self.to_b(x[va])], dim=1), y[va].float()),
            "test": (torch.cat([test[0], self.to_b(test[0])], dim=1), test[1].float()),
        }
        c = x.shape[1]
        self.domain_channels = c
        # Stored 0..255 → [-1, 1]: the loader normalises with these (the tanh range).
        self.mean, self.std = [127.5] * (2 * c), [127.5] * (2 * c)

    def describe(self) -> dict[str, Any]:
        out = super().describe()
        out.update(transform=self.transform, view=self.view, domain_channels=self.domain_channels)
        return out


def _check(transform: str, dilate_size: int, view: str, val_fraction: float) -> None:
    if transform not in TRANSFORMS:
        raise ConfigError(f"data.transform: '{transform}'; valid: {', '.join(TRANSFORMS)}")
    if view not in VIEWS:
        raise ConfigError(f"data.view: '{view}'; valid: {', '.join(VIEWS)}")
    if dilate_size < 1 or dilate_size % 2 == 0:
        raise ConfigError(f"data.dilate_size: an odd side ≥ 1 (got {dilate_size})")
    if not 0.0 < val_fraction < 1.0:
        raise ConfigError(f"data.val_fraction: must be between 0 and 1 (got {val_fraction})")


@register_data("unpaired_fashion_mnist")
def unpaired_fashion_mnist(
    *,
    transform: str = "dilate",  # domain B = T(A): dilate, invert, rotate90
    dilate_size: int = 3,  # side of the max filter (odd)
    view: str = "unpaired",  # unpaired (A and B stacked), a or b (one domain, classification)
    root: str | None = None,  # folder of the four Fashion-MNIST files
    batch_size: int = 64,  # training samples per step
    eval_batch_size: int = 500,  # samples per evaluation batch
    val_fraction: float = 0.1,  # held-out share of the training file (stratified)
    split_seed: int = 0,  # seeds the val split and the A/B halves
    subset: int | None = None,  # stratified subset of the training file, before splitting
    test_subset: int | None = None,  # first N test images
    download: bool = True,  # download into the cache when the files are missing
    seed: int = 0,  # shuffling and augmentation
    augment: Augment = Augment(),  # training-split augmentation (both domains alike)
) -> UnpairedImages:
    """Fashion-MNIST (domain A) and ``transform`` of it (domain B: ``invert``, ``dilate``,
    ``rotate90``), unpaired in training (disjoint halves), paired with the truth in val/test.

    ``view: a`` / ``view: b``: one domain as ordinary classification data (a judge's data).
    """
    return UnpairedImages(
        None, transform=transform, dilate_size=dilate_size, view=view, root=root,
        download=download, val_fraction=val_fraction, split_seed=split_seed, subset=subset,
        test_subset=test_subset, batch_size=batch_size, eval_batch_size=eval_batch_size,
        seed=seed, augment=augment,
    )  # fmt: skip
