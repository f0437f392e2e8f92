"""In-memory batching: the whole split as one tensor on the training device.

Indexing a uint8 tensor gathers a batch in microseconds, where a ``DataLoader`` with per-sample
PIL decoding and ``ToTensor`` spends milliseconds; augmentation runs on the whole batch.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch

from trainlab.data.augment import Augment, apply_augment
from trainlab.data.base import Batch

__all__ = ["TensorLoader", "TensorDataModule", "epoch_seed"]


def epoch_seed(seed: int, epoch: int, batch: int = -1) -> int:
    # Distinct, reproducible 63-bit seeds per (seed, epoch, batch): batches become pure
    # functions of their position, which is what makes mid-epoch resume exact.
    return (seed * 1_000_003 + epoch * 10_007 + batch + 1) % (2**63 - 1)


class TensorLoader:
    """Yields ``(x, y)`` batches from tensors held in memory.

    ``x`` is stored as given (uint8 images stay uint8: 4× less memory traffic than float);
    each batch is augmented, converted to float32 and normalised with ``mean``/``std`` (per
    channel, in the stored value range) on the fly.

    >>> loader = TensorLoader(torch.zeros(10, 1, 4, 4), torch.zeros(10), batch_size=4)
    >>> [tuple(x.shape) for x, _ in loader.iter_epoch(0)]
    [(4, 1, 4, 4), (4, 1, 4, 4), (2, 1, 4, 4)]
    """

    def __init__(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        *,
        batch_size: int,
        shuffle: bool = False,
        drop_last: bool = False,
        seed: int = 0,
        augment: Augment | None = None,
        mean: list[float] | None = None,
        std: list[float] | None = None,
    ) -> None:
        if len(x) != len(y):
            raise ValueError(f"x has {len(x)} samples but y has {len(y)}")
        self.x, self.y = x, y
        self.batch_size = batch_size
        self.shuffle, self.drop_last, self.seed = shuffle, drop_last, seed
        self.augment = augment if augment is not None and _any_aug(augment) else None
        shape = (1, -1) + (1,) * (x.dim() - 2)  # broadcast per channel: (1, C, 1, 1)
        self.mean = torch.tensor(mean, device=x.device).view(shape) if mean else None
        self.inv_std = 1.0 / torch.tensor(std, device=x.device).view(shape) if std else None

    def __len__(self) -> int:
        n = len(self.x)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def order(self, epoch: int) -> torch.Tensor:
        """Sample indices for ``epoch`` (a seeded permutation when shuffling)."""
        if not self.shuffle:
            return torch.arange(len(self.x))
        gen = torch.Generator().manual_seed(epoch_seed(self.seed, epoch))
        return torch.randperm(len(self.x), generator=gen)

    def iter_epoch(self, epoch: int, start: int = 0) -> Iterator[Batch]:
        """Batches ``start, start+1, …`` of ``epoch``."""
        order = self.order(epoch).to(self.x.device)
        for b in range(start, len(self)):
            idx = order[b * self.batch_size : (b + 1) * self.batch_size]
            x = self.x[idx]
            if self.augment is not None:
                gen = torch.Generator(device=x.device)
                gen.manual_seed(epoch_seed(self.seed, epoch, b))
                x = apply_augment(x, self.augment, gen)
            yield self._normalise(x), self.y[idx]

    def _normalise(self, x: torch.Tensor) -> torch.Tensor:
        x = x.float()
        if self.mean is not None:
            x = x.sub_(self.mean)
        if self.inv_std is not None:
            x = x.mul_(self.inv_std)
        return x


def _any_aug(aug: Augment) -> bool:
    return bool(aug.flip or aug.translate or aug.cutout)


class TensorDataModule:
    """A data module whose splits are tensors: subclasses fill ``self.splits`` in ``load()``.

    ``splits`` maps ``train``/``val``/``test`` to ``(x, y)`` on the CPU; ``setup`` moves them to
    the device once. Normalisation statistics come from the training split only.
    """

    num_classes: int | None = None

    def __init__(
        self,
        *,
        batch_size: int,
        eval_batch_size: int,
        seed: int,
        augment: Augment | None = None,
        normalize: bool = True,
    ) -> None:
        self.batch_size, self.eval_batch_size, self.seed = batch_size, eval_batch_size, seed
        self.augment = augment
        self.normalize = normalize
        self.splits: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        self.mean: list[float] | None = None
        self.std: list[float] | None = None
        self.input_shape: tuple[int, ...] = ()
        self.sizes: dict[str, int] = {}

    def load(self) -> None:
        raise NotImplementedError

    def setup(self, device: torch.device | str = "cpu") -> None:
        if not self.splits:
            self.load()
            if self.normalize:
                self.mean, self.std = channel_stats(self.splits["train"][0])
        self.splits = {k: (x.to(device), y.to(device)) for k, (x, y) in self.splits.items()}
        self.input_shape = tuple(self.splits["train"][0].shape[1:])
        self.sizes = {k: len(v[0]) for k, v in self.splits.items()}

    def loader(self, split: str) -> TensorLoader:
        """Batches of ``split``: shuffled and augmented for ``train``, in order otherwise."""
        # FastTensorLoader yields the same batches as TensorLoader, gathered in one op.
        from trainlab.data.fast import memory_loader

        return memory_loader(self, split)

    def describe(self) -> dict[str, Any]:
        return {
            "num_classes": self.num_classes,
            "input_shape": list(self.input_shape),
            "sizes": self.sizes,
            "mean": self.mean,
            "std": self.std,
        }


def channel_stats(x: torch.Tensor) -> tuple[list[float], list[float]]:
    """Per-channel mean and std of (N, C, ...) data in stored units, over ≤ 10k samples."""
    sample = x[:10_000].float().transpose(0, 1).reshape(x.shape[1], -1)  # (C, N*H*W)
    std = sample.std(dim=1).clamp_min(1e-8)
    return sample.mean(dim=1).tolist(), std.tolist()
