"""File-backed batches: a ``DataLoader`` over files behind the :class:`~trainlab.data.base.Loader`
contract, exact on resume and sharded under ``torch.distributed``.

Why each piece is here:

- **Exact resume.** Batch ``b`` of epoch ``e`` must be the same tensor whether the epoch ran from
  the start, restarted at ``b`` after a resume, or ran with 0, 1 or 4 workers. A worker's own RNG
  cannot give that: which worker decodes batch ``b`` and how many samples it drew before depend
  on the start and the worker count, and persistent workers never reseed. So the batch sampler
  hands out ``(epoch, index)`` keys and :class:`FileDataset` runs the random transforms of
  sample ``index`` under a private seed of ``(seed, epoch, index)`` (the process's global RNG is
  forked and restored: the training loop's RNG stream is untouched, also with 0 workers).
- **Distributed.** With ``world`` processes, training shards each epoch with torch's
  :class:`~torch.utils.data.DistributedSampler` (``set_epoch`` per epoch) and takes
  ``batch_size / world`` samples per rank, so rank ``r``'s batch ``b`` is exactly
  ``global_batch_b[r::world]``: the slice ``trainlab.train.distributed.shard`` would have taken,
  but decoded only by the rank that uses it. Evaluation splits are strided without padding (a
  padded duplicate would be scored twice). Such a loader sets ``sharded = True``.
- **Throughput without oversubscription.** ``pin_memory`` on CUDA (``non_blocking`` copies),
  persistent workers (no fork per epoch), ``prefetch_factor`` batches queued per worker, and
  :func:`worker_budget`: workers run one torch thread each and workers + main process fit in
  this process's share of the cores.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Sampler

from trainlab.data.base import Batch
from trainlab.data.memory import epoch_seed
from trainlab.errors import ConfigError, DataError

__all__ = [
    "FileDataset",
    "FolderLoader",
    "EpochBatches",
    "open_image",
    "sample_seed",
    "worker_budget",
    "dist_position",
]

Key = tuple[int, int]  # (epoch, sample index): what the batch sampler hands to the dataset


def sample_seed(seed: int, epoch: int, index: int) -> int:
    """The seed of sample ``index``'s random transforms in ``epoch`` (63 bits).

    ``SeedSequence`` hashes the triple, so neighbouring epochs or indices get unrelated streams
    (``seed + index`` would make sample 1 of seed 0 the twin of sample 0 of seed 1).
    """
    entropy = [seed & (2**64 - 1), epoch, index]
    return int(np.random.SeedSequence(entropy).generate_state(1, np.uint64)[0] >> 1)


def worker_budget(requested: int) -> int:
    """Loader workers such that workers + the main process never exceed the cores this process
    may use: its CPU affinity divided among torchrun's processes on this machine
    (``LOCAL_WORLD_SIZE``). Each worker runs torch with one thread (:func:`_worker_init`), so
    torch threads × workers ≤ cores − 1."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    local = max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1")))
    return max(0, min(requested, (cores or 1) // local - 1))


def _worker_init(_: int) -> None:
    torch.set_num_threads(1)  # per-sample decoding gains nothing from intra-op threads


def dist_position() -> tuple[int, int]:
    """(rank, world size) when ``torch.distributed`` is initialised, else (0, 1)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def open_image(path: str, mode: str) -> Any:
    """A fully decoded PIL image in ``mode``; an unreadable file is a one-line DataError."""
    import warnings

    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # refused below
            with Image.open(path) as im:
                # The header's size, checked before decoding: a few bytes may claim gigapixels.
                limit = Image.MAX_IMAGE_PIXELS or 89_478_485
                if im.size[0] * im.size[1] > limit:
                    raise DataError(
                        f"{path}: the image claims {im.size[0]}×{im.size[1]} pixels, more than "
                        f"{limit:,} (a decompression bomb?); remove it or use "
                        "data.on_error: skip"
                    )
                return im.convert(mode)  # convert() decodes fully: truncation shows up here
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        # PIL's errors for bad/truncated files
        raise DataError(f"{path}: cannot read image ({e}); data.on_error: skip drops such "
                        "files") from None  # fmt: skip


class FileDataset(Dataset[tuple[torch.Tensor, int]]):
    """(path, label) pairs → (image tensor, label), indexed by ``(epoch, index)`` keys.

    With ``random`` set, the transform runs under the seed ``sample_seed(seed, epoch, index)``
    inside a forked RNG, so its draws depend on nothing else. A plain int index means epoch 0.
    """

    def __init__(
        self,
        samples: list[tuple[str, int]],
        transform: Callable[[Any], torch.Tensor],
        mode: str,
        *,
        seed: int = 0,
        random: bool = False,
    ) -> None:
        self.samples, self.transform, self.mode = samples, transform, mode
        self.seed, self.random = seed, random

    def __len__(self) -> int:
        return len(self.samples)

    def load(self, i: int) -> Any:
        """Sample ``i``'s image before the transforms: the decoded file."""
        return open_image(self.samples[i][0], self.mode)

    def __getitem__(self, key: Key | int) -> tuple[torch.Tensor, int]:
        epoch, i = key if isinstance(key, tuple) else (0, key)
        image, label = self.load(i), self.samples[i][1]
        if not self.random:
            return self.transform(image), label
        # transforms v2 draw from torch's global RNG: fork it (CPU only), seed, restore on exit.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(sample_seed(self.seed, epoch, i))
            return self.transform(image), label


class EpochBatches(Sampler[list[Key]]):
    """Batches ``start, start+1, …`` of one epoch of ``order`` as lists of ``(epoch, index)``.

    ``order`` is a :class:`DistributedSampler` (reshuffled by ``set_epoch``) or a fixed index
    sequence. Set the position with :meth:`set_position` before each pass: the ``DataLoader``
    iterates this sampler in the main process, so persistent workers need no message.
    """

    def __init__(self, order: DistributedSampler[int] | Sequence[int], batch_size: int) -> None:
        self.order, self.batch_size = order, batch_size
        self.epoch, self.start = 0, 0

    def total(self) -> int:
        """Batches in a whole epoch."""
        return -(-len(self.order) // self.batch_size)

    def set_position(self, epoch: int, start: int) -> None:
        self.epoch, self.start = epoch, start
        if isinstance(self.order, DistributedSampler):
            self.order.set_epoch(epoch)

    def __len__(self) -> int:
        return max(0, self.total() - self.start)

    def __iter__(self) -> Iterator[list[Key]]:
        order, bs = list(self.order), self.batch_size
        for b in range(self.start, self.total()):
            yield [(self.epoch, i) for i in order[b * bs : (b + 1) * bs]]


def _order(
    n: int, batch_size: int, shuffle: bool, seed: int, rank: int, world: int
) -> tuple[DistributedSampler[int] | Sequence[int], int]:
    """This rank's sample order and per-rank batch size."""
    if not shuffle:  # evaluation: every sample exactly once over the ranks, no padding
        return range(rank, n, world), -(-batch_size // world)
    if batch_size % world:
        raise ConfigError(
            f"data.batch_size={batch_size}: must be divisible by the {world} distributed "
            "processes (each takes an equal share of every batch)"
        )
    # DistributedSampler also for one process: the same permutation for any world size, so
    # N ranks together see exactly the batches one process would (padded by ≤ world−1 repeats).
    sampler = DistributedSampler(
        range(n), num_replicas=world, rank=rank, shuffle=True, seed=epoch_seed(seed, 0)
    )
    return sampler, batch_size // world


class FolderLoader:
    """A ``DataLoader`` over image files behind the :class:`~trainlab.data.base.Loader` contract.

    ``iter_epoch(epoch, start)`` is a pure function of (seed, epoch, start, rank, world): the
    sample order and every random transform (see the module notes). ``len()`` is the number of
    batches this rank yields per epoch; ``sharded`` is True when they are this rank's share of
    each global batch (world > 1), which the training loop must not slice again.
    """

    def __init__(
        self,
        ds: FileDataset,
        batch_size: int,
        shuffle: bool,
        seed: int,
        workers: int,
        device: torch.device,
        *,
        rank: int = 0,
        world: int = 1,
    ) -> None:
        if not 0 <= rank < world:
            raise ValueError(f"rank {rank} is outside a world of {world} process(es)")
        order, per_rank = _order(len(ds), batch_size, shuffle, seed, rank, world)
        self.batches = EpochBatches(order, per_rank)
        self.device, self.seed, self.sharded = device, seed, world > 1
        # Only seeds the workers' own RNGs (unused by the transforms); a private generator keeps
        # the DataLoader from drawing its base seed from the training loop's global RNG.
        self.gen = torch.Generator()
        self.dl = DataLoader(
            ds,
            batch_sampler=self.batches,
            num_workers=workers,
            pin_memory=device.type == "cuda",  # page-locked batches: async host→GPU copies
            persistent_workers=workers > 0,  # no worker start-up (fork + imports) per epoch
            worker_init_fn=_worker_init,
            generator=self.gen,
            prefetch_factor=2 if workers > 0 else None,  # batches in flight per worker
        )

    def __len__(self) -> int:
        return self.batches.total()

    def iter_epoch(self, epoch: int, start: int = 0) -> Iterator[Batch]:
        self.batches.set_position(epoch, start)
        self.gen.manual_seed(epoch_seed(self.seed, epoch))
        try:
            for x, y in self.dl:
                yield x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)
        except DataError as e:  # from a worker the message carries a traceback: keep the gist
            raise DataError(str(e).strip().splitlines()[-1].removeprefix("DataError: ")) from None
