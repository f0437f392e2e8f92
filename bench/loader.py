"""Loader throughput on the real Fashion-MNIST train set (60,000 images), flip + translate 2.

Compares, at the same batch size:
- ``TensorLoader`` (trainlab.data.memory): in-memory uint8 tensor, batched augmentation;
- ``FastTensorLoader`` (trainlab.data.fast): the same batches, bitwise, gathered in one op;
- a torchvision ``DataLoader`` over PIL images with RandomHorizontalFlip, RandomCrop(pad 2),
  ToTensor and Normalize: the tutorial pipeline.

Prints a table and the headline lines ``bench loader_samples_per_s`` (FastTensorLoader, what the
new data sources use) and ``bench loader_vs_torchvision`` (its ratio to torchvision), plus the
same two figures for the existing TensorLoader. Run: ``.venv/bin/python bench/loader.py``.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Iterable

import torch
from torch.utils.data import DataLoader, Dataset

from trainlab.data.augment import Augment
from trainlab.data.fashion_mnist import find_files, load_arrays
from trainlab.data.fast import FastTensorLoader
from trainlab.data.memory import TensorLoader, channel_stats


class PILImages(Dataset[tuple[torch.Tensor, int]]):
    """Per-sample PIL path: uint8 (28, 28) → PIL image → transforms → float tensor."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, transform: Callable[..., torch.Tensor]):
        self.x, self.y, self.transform = x.numpy(), y.tolist(), transform

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        from PIL import Image

        return self.transform(Image.fromarray(self.x[i], mode="L")), self.y[i]


def rate(batches: Callable[[int], Iterable[tuple[torch.Tensor, torch.Tensor]]], reps: int) -> float:
    """Best samples/s over ``reps`` passes (best, not mean: the machine is shared)."""
    best = 0.0
    for rep in range(reps):
        t0, n = time.perf_counter(), 0
        for xb, _ in batches(rep):
            n += len(xb)
        best = max(best, n / (time.perf_counter() - t0))
    return best


def torchvision_rate(x: torch.Tensor, y: torch.Tensor, batch: int, mean: float, std: float,
                     samples: int, workers: int) -> float:  # fmt: skip
    from torchvision import transforms as T

    tf = T.Compose([
        T.RandomHorizontalFlip(), T.RandomCrop(28, padding=2), T.ToTensor(),
        T.Normalize([mean / 255], [std / 255]),
    ])  # fmt: skip
    ds = PILImages(x[:samples, 0], y[:samples], tf)
    dl = DataLoader(ds, batch_size=batch, shuffle=True, num_workers=workers)
    return rate(lambda _: dl, 2)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch-size", type=int, default=512)
    ap.add_argument("--tv-samples", type=int, default=15_360, help="torchvision: samples timed")
    ap.add_argument("--tv-workers", type=int, default=0)
    ap.add_argument("--epochs", type=int, default=3)
    args = ap.parse_args()

    arrays = load_arrays(str(find_files(None, download=True)))
    x, y = arrays["train_x"], arrays["train_y"]  # (60000, 1, 28, 28) uint8, (60000,) int64
    mean, std = channel_stats(x)
    kw = dict(batch_size=args.batch_size, shuffle=True, seed=0, mean=mean, std=std,
              augment=Augment(flip=True, translate=2))  # fmt: skip
    ref = TensorLoader(x, y, **kw)  # type: ignore[arg-type]
    fast = FastTensorLoader(x, y, **kw)  # type: ignore[arg-type]
    ref_rate = rate(ref.iter_epoch, args.epochs)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the same loader without intra-op threads (FastTensorLoader's way)
    ref1_rate = rate(ref.iter_epoch, args.epochs)
    torch.set_num_threads(threads)
    fast_rate = rate(fast.iter_epoch, args.epochs)
    tv_rate = torchvision_rate(x, y, args.batch_size, mean[0], std[0], args.tv_samples,
                               args.tv_workers)  # fmt: skip

    print(f"Fashion-MNIST train, batch {args.batch_size}, flip + translate 2, "
          f"torch threads {torch.get_num_threads()}")  # fmt: skip
    print(f"{'loader':44s} {'samples/s':>12s} {'vs torchvision':>15s}")
    rows = [
        ("FastTensorLoader (trainlab.data.fast), 1 thr", fast_rate),
        (f"TensorLoader (trainlab.data.memory), {threads} thr", ref_rate),
        ("TensorLoader (trainlab.data.memory), 1 thr", ref1_rate),
        (f"torchvision DataLoader, PIL, {args.tv_workers} workers", tv_rate),
    ]
    for name, r in rows:
        print(f"{name:44s} {r:12,.0f} {r / tv_rate:14.1f}x")
    print(f"bench loader_samples_per_s {fast_rate:.0f} samples/s")
    print(f"bench loader_vs_torchvision {fast_rate / tv_rate:.1f} x")
    print(f"bench tensorloader_samples_per_s {ref_rate:.0f} samples/s")
    print(f"bench tensorloader_vs_torchvision {ref_rate / tv_rate:.1f} x")


if __name__ == "__main__":
    main()
