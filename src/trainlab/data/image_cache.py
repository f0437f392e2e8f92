"""``data.cache``: an image folder decoded once into memory, batched like the built-in datasets.

Streaming (:mod:`trainlab.data.folder_loader`) decodes every file in every epoch, in loader
workers that take cores from training. A folder whose decoded size fits a memory budget is
instead decoded once at set-up (by a few threads: PIL releases the GIL while it decodes) into
one uint8 tensor per split, the store the built-in datasets use (:mod:`trainlab.data.fast`).

What is stored: each image after the deterministic start of its split's torchvision pipeline,
applied by the same torchvision calls as when streaming (``ToImage``, ``Resize``; evaluation
splits also ``CenterCrop``). So evaluation batches and the normalisation statistics are bitwise
the streaming path's. Training batches, two ways:

- **batched** (the random steps are a flip and/or a padded random crop of the stored size):
  :class:`CachedTensorLoader`, one ``index_select`` per batch. The sample order is the
  streaming path's; each sample's flip and shift are drawn per (seed, epoch, sample) from an
  epoch-wide table, so they do not depend on batch size, start position or world size, but
  they are other draws than torchvision's: same distributions (flip p = 0.5, shift uniform in
  ±padding, zero fill), different images flipped/shifted.
- **per sample** (rotation, colour jitter, random erasing, a crop smaller than the image):
  the streaming loader over :class:`CachedDataset`: the same torchvision transforms under the
  same per-sample seeds, so the same tensors bitwise, without decoding files.

Both are pure functions of (seed, epoch, start): a resumed run sees the same batches.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
import torch

from trainlab.data.augment import Augment
from trainlab.data.base import Batch
from trainlab.data.fast import FastTensorLoader
from trainlab.data.folder_loader import FileDataset, open_image
from trainlab.data.memory import epoch_seed
from trainlab.errors import DataError

__all__ = [
    "CacheMode",
    "CachePlan",
    "CachedDataset",
    "CachedTensorLoader",
    "batched_augment",
    "budget_mb",
    "decode_images",
    "decode_threads",
    "plan_cache",
    "stack_images",
    "stored_shape",
]

CacheMode = Literal["auto", "always", "never"]
# The default budget: this share of the memory available when the run starts (and, for a CUDA
# run, of the free GPU memory, where the store then lives).
BUDGET_SHARE = 0.25
_MB = 2**20


def _available_bytes() -> int:
    """MemAvailable from /proc/meminfo (Linux), else free physical pages, else 8 GiB."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 8 * 2**30


def budget_mb(requested: float | None, device: torch.device) -> float:
    """The cache budget in MiB: ``requested`` (``data.cache_budget_mb``), or by default
    ``BUDGET_SHARE`` (25 %) of the available RAM, and of the free memory of a CUDA device.

    >>> budget_mb(512, torch.device("cpu"))
    512.0
    """
    if requested is not None:
        return float(requested)
    share = BUDGET_SHARE * _available_bytes()
    if device.type == "cuda":
        share = min(share, BUDGET_SHARE * torch.cuda.mem_get_info(device)[0])
    return share / _MB


def stored_shape(path: str, mode: str, resize: int | None) -> tuple[int, int, int]:
    """(C, H, W) of ``path`` once decoded in ``mode`` and resized (shorter side to ``resize``,
    as torchvision's ``Resize``), read from the file's header only."""
    import warnings

    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                w, h = im.size
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        raise DataError(f"{path}: cannot read image ({e})") from None  # open_image names it
    if resize:
        short, long = min(w, h), max(w, h)
        new_long = int(resize * long / short)
        w, h = (resize, new_long) if w <= h else (new_long, resize)
    return len(mode), h, w


def batched_augment(t: Any, shape: Sequence[int]) -> Augment | None:
    """The training transforms ``t`` (``ImageTransforms``) as a batched :class:`Augment`, when
    their random steps are only a flip and a padded random crop of the stored (C, H, W) size;
    None when a step needs torchvision per sample (rotation, jitter, erasing, a smaller crop)."""
    if t.rotation or t.color_jitter or t.random_erasing:
        return None
    if t.crop is not None and not (t.crop == shape[-1] == shape[-2]):
        return None
    return Augment(flip=t.flip, translate=t.crop_padding if t.crop else 0)


@dataclass
class CachePlan:
    """Which path an image folder takes and why (``describe()["cache"]``, the run's log)."""

    mode: str
    cached: bool
    reason: str
    needed_mb: float = 0.0
    budget_mb: float = 0.0
    augmentation: str = ""  # "batched", "per-sample torchvision" or "none", once cached

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def line(self) -> str:
        """One line for the run's log."""
        path = "decoded once into memory" if self.cached else "streamed from files"
        how = f", {self.augmentation} augmentation" if self.cached and self.augmentation else ""
        return f"image folder {path}{how}: {self.reason} (data.cache: {self.mode})"


def plan_cache(
    mode: CacheMode, n_images: int, shape: tuple[int, int, int], aug_factor: float, budget: float
) -> CachePlan:
    """Decide before decoding: ``n_images`` of ``shape`` (uint8) plus the training store's
    padded/mirrored copy (``aug_factor`` × the folder, an upper bound) against ``budget`` MiB.

    >>> plan_cache("auto", 10_000, (1, 28, 28), 2.6, 1024).cached
    True
    """
    if mode == "never":
        return CachePlan(mode, False, "caching is off")
    needed = n_images * int(np.prod(shape)) * (1.0 + aug_factor) / _MB
    amount = f"~{needed:,.1f} MiB" if needed >= 0.1 else "< 0.1 MiB"
    size = f"{n_images:,} images of {shape[0]}×{shape[1]}×{shape[2]}: {amount}"
    if needed <= budget:
        return CachePlan(mode, True, f"{size} fit the budget of {budget:,.1f} MiB", needed, budget)
    if mode == "always":
        raise DataError(
            f"data.cache: always, but the folder needs {size}, over the budget of "
            f"{budget:,.1f} MiB: raise data.cache_budget_mb, or set data.cache: auto (streams "
            "folders that do not fit) or never"
        )
    return CachePlan(
        mode, False, f"{size} exceed the budget of {budget:,.1f} MiB (data.cache_budget_mb)",
        needed, budget,
    )  # fmt: skip


Decoded = tuple[torch.Tensor, tuple[int, int]] | DataError  # (C, H, W) uint8 and PIL size


def decode_images(
    paths: Sequence[str], mode: str, resize: int | None, threads: int
) -> list[Decoded]:
    """Each file decoded in ``mode`` and resized exactly as the streaming pipeline does
    (``ToImage``: the pixels as a (C, H, W) uint8 tensor; then ``Resize(antialias=True)``),
    or the DataError naming it, in order. A test checks the tensors against torchvision's."""
    from torchvision.transforms import v2

    resizer = v2.Resize(resize, antialias=True) if resize else None

    def one(path: str) -> Decoded:
        try:
            image = open_image(path, mode)
        except DataError as e:
            return e
        # ToImage's own conversion (pil_to_tensor) without its per-call dispatch: ~4× faster
        # on small files, the same values.
        x = torch.from_numpy(np.array(image, copy=True)).view(image.size[1], image.size[0], -1)
        x = x.permute(2, 0, 1)
        if resizer is not None:
            from torchvision import tv_tensors

            x = resizer(tv_tensors.Image(x)).as_subclass(torch.Tensor)
        return x.contiguous(), image.size

    if threads <= 1:
        return [one(p) for p in paths]
    with ThreadPoolExecutor(max_workers=threads) as pool:
        return list(pool.map(one, paths, chunksize=64))


class CachedDataset(FileDataset):
    """:class:`FileDataset` whose images come from a decoded (N, C, H, W) uint8 store instead
    of files: the same per-sample transforms under the same seeds give the same tensors."""

    def __init__(
        self,
        x: torch.Tensor,
        samples: list[tuple[str, int]],
        transform: Callable[[Any], torch.Tensor],
        *,
        seed: int = 0,
        random: bool = False,
    ) -> None:
        super().__init__(samples, transform, "", seed=seed, random=random)
        self.x = x

    def load(self, i: int) -> Any:
        from torchvision import tv_tensors

        return tv_tensors.Image(self.x[i])  # what ToImage makes of the file: passes through


class CachedTensorLoader(FastTensorLoader):
    """:class:`FastTensorLoader` over a decoded folder, made to match the streaming path.

    - order: the streaming loader's permutation (``DistributedSampler`` of one process, seeded
      ``epoch_seed(seed, 0) + epoch``) and its batches (no batch is dropped);
    - values: torchvision's arithmetic (``ToDtype(scale=True)`` then ``Normalize``), so an
      unaugmented batch equals the streamed one bitwise;
    - augmentation: flip and shift of sample ``i`` in ``epoch`` are entry ``i`` of tables drawn
      once per epoch: the same for any batch size, start or world size.

    >>> ld = CachedTensorLoader(torch.zeros(5, 1, 4, 4, dtype=torch.uint8), torch.zeros(5),
    ...                         batch_size=2, shuffle=True)
    >>> [len(y) for _, y in ld.iter_epoch(0)]
    [2, 2, 1]
    """

    def __init__(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        *,
        mean: list[float] | None = None,
        std: list[float] | None = None,
        **kw: Any,
    ) -> None:
        super().__init__(x, y, threads=None, drop_last=False, **kw)
        self.norm = (mean, std) if mean is not None and std is not None else None

    def order(self, epoch: int) -> torch.Tensor:
        if not self.shuffle:
            return torch.arange(len(self.x))
        # = list(DistributedSampler(range(n), num_replicas=1, rank=0, shuffle=True,
        #   seed=epoch_seed(seed, 0)) after set_epoch(epoch)): what FolderLoader iterates.
        gen = torch.Generator().manual_seed(epoch_seed(self.seed, 0) + epoch)
        return torch.randperm(len(self.x), generator=gen)

    def draws(self, epoch: int) -> dict[str, torch.Tensor]:
        """Per-sample flip (bool) and shifts (dx, dy) of ``epoch``, (N,) each, on the store's
        device; a generator of its own, seeded from (seed, epoch), not the order's."""
        aug, n = self.augment, len(self.x)
        if aug is None:
            return {}
        state = np.random.SeedSequence([self.seed & (2**64 - 1), epoch, 0xCA5E]).generate_state(1)
        gen = torch.Generator().manual_seed(int(state[0]))
        out = {"flip": torch.rand(n, generator=gen) < 0.5} if aug.flip else {}
        if aug.translate:
            out["dx"] = torch.randint(0, 2 * aug.translate + 1, (n,), generator=gen)
            out["dy"] = torch.randint(0, 2 * aug.translate + 1, (n,), generator=gen)
        return {k: v.to(self.x.device) for k, v in out.items()}

    def iter_epoch(self, epoch: int, start: int = 0) -> Iterator[Batch]:
        order = self.order(epoch).to(self.x.device)
        table = self.draws(epoch)
        bs = self.batch_size
        for b in range(start, len(self)):
            idx = order[b * bs : (b + 1) * bs]
            x = self.x.index_select(0, idx) if not table else self._windows(idx, table)
            yield self._normalise(x), self.y.index_select(0, idx)

    def _windows(self, idx: torch.Tensor, table: dict[str, torch.Tensor]) -> torch.Tensor:
        # Window number (flip·N + i)·C·Hp·Wp + dy·Wp + dx of the padded store (see fast.py).
        assert self.windows is not None and self.augment is not None
        (n, c, h, w), t = self.x.shape, self.augment.translate
        hp, wp = h + 2 * t, w + 2 * t
        img = idx + table["flip"].index_select(0, idx).long() * n if "flip" in table else idx
        off = img * (c * hp * wp)
        if t:
            off = off + table["dy"].index_select(0, idx) * wp + table["dx"].index_select(0, idx)
        return self.windows.index_select(0, off)

    def _normalise(self, x: torch.Tensor) -> torch.Tensor:
        from torchvision.transforms.v2 import functional as F

        x = F.to_dtype_image(x, torch.float32, scale=True)  # uint8 → 0..1, as ToDtype does
        if self.norm is not None:
            x = F.normalize_image(x, list(self.norm[0]), list(self.norm[1]), inplace=True)
        return x


def stack_images(images: Sequence[torch.Tensor], crop: int | None) -> torch.Tensor | None:
    """(N, C, H, W) of one split's decoded images, each centre-cropped to ``crop`` first as
    torchvision's ``CenterCrop`` does (evaluation splits); None when their sizes differ."""
    if crop:
        from torchvision.transforms.v2 import functional as F

        images = [F.center_crop_image(im, [crop, crop]) for im in images]
    if len({tuple(im.shape) for im in images}) > 1:
        return None
    return torch.stack(list(images))


def decode_threads(shape: Sequence[int]) -> int:
    """Threads decoding a folder of images of (C, H, W) ``shape`` at set-up: the usable cores,
    at most 8, for images of ≥ 64×64 pixels, whose decoding (in C, without the GIL) dominates;
    one for smaller ones, where PIL's per-file Python work does and threads only contend
    (10,000 28×28 PNGs: 4.7 s with one thread, 6.5 s with two, on a busy 2-core machine)."""
    if shape[-1] * shape[-2] < 64 * 64:
        return 1
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, min(8, cores or 1))
