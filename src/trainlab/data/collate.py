"""Variable-length sequences: padding collate (lengths + mask) and length bucketing.

>>> batch = [(torch.tensor([5, 6, 7]), 1), (torch.tensor([8]), 0)]
>>> out = pad_collate(batch)
>>> out.x.tolist(), out.lengths.tolist(), out.mask.tolist()
([[5, 6, 7], [8, 0, 0]], [3, 1], [[True, True, True], [True, False, False]])
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, NamedTuple

import torch
from torch.nn.utils.rnn import pad_sequence
from torch.utils.data import Sampler

__all__ = ["PaddedBatch", "pad_collate", "BucketBatchSampler"]


class PaddedBatch(NamedTuple):
    """``x`` (B, L_max, ...) padded; ``lengths`` (B,) int64; ``mask`` (B, L_max) True on real
    steps; ``y`` stacked targets (padded the same way when they are sequences)."""

    x: torch.Tensor
    lengths: torch.Tensor
    mask: torch.Tensor
    y: torch.Tensor


def _stack(items: Sequence[Any], pad: float) -> torch.Tensor:
    ts = [torch.as_tensor(t) for t in items]
    if ts[0].dim() == 0:
        return torch.stack(ts)
    return pad_sequence(ts, batch_first=True, padding_value=pad)


def pad_collate(
    batch: Sequence[tuple[Any, Any]], pad_value: float = 0, target_pad: float = -100
) -> PaddedBatch:
    """``collate_fn`` for samples ``(x_i (L_i, ...), y_i)``: pads to the longest sequence.

    Sequence targets are padded with ``target_pad`` (-100: what ``cross_entropy`` ignores).
    """
    xs = [torch.as_tensor(x) for x, _ in batch]
    lengths = torch.tensor([len(x) for x in xs], dtype=torch.int64)
    x = pad_sequence(xs, batch_first=True, padding_value=pad_value)
    mask = torch.arange(x.shape[1])[None, :] < lengths[:, None]  # (B, L_max)
    return PaddedBatch(x, lengths, mask, _stack([y for _, y in batch], target_pad))


class BucketBatchSampler(Sampler[list[int]]):
    """Batches of similar length ("dynamic batching"): less padding, same samples per epoch.

    Each epoch shuffles the indices (seeded by ``seed`` and the epoch), sorts them by length
    within pools of ``pool`` batches, cuts batches and shuffles the batch order, so batches
    differ from epoch to epoch while each holds neighbours in length.
    """

    def __init__(
        self,
        lengths: Sequence[int],
        batch_size: int,
        *,
        seed: int = 0,
        pool: int = 50,
        shuffle: bool = True,
        drop_last: bool = False,
    ) -> None:
        self.lengths = torch.as_tensor(lengths)
        self.batch_size, self.seed, self.pool = batch_size, seed, pool
        self.shuffle, self.drop_last, self.epoch = shuffle, drop_last, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        n = len(self.lengths)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def __iter__(self) -> Iterator[list[int]]:
        gen = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        n = len(self.lengths)
        order = torch.randperm(n, generator=gen) if self.shuffle else torch.arange(n)
        span = self.batch_size * self.pool
        batches: list[list[int]] = []
        for a in range(0, n, span):
            chunk = order[a : a + span]
            chunk = chunk[torch.argsort(self.lengths[chunk], stable=True)]
            batches += [
                chunk[b : b + self.batch_size].tolist()
                for b in range(0, len(chunk), self.batch_size)
            ]
        if self.drop_last:
            batches = [b for b in batches if len(b) == self.batch_size]
        if self.shuffle:
            batches = [batches[i] for i in torch.randperm(len(batches), generator=gen).tolist()]
        yield from batches
