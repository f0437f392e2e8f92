"""Synthetic classification data: Gaussian clusters around one random prototype per class."""

from __future__ import annotations

import torch

from trainlab.data.augment import Augment
from trainlab.data.base import register_data
from trainlab.data.memory import TensorDataModule

__all__ = ["SyntheticClassification", "synthetic"]


class SyntheticClassification(TensorDataModule):
    def __init__(
        self,
        num_classes: int,
        shape: list[int],
        sizes: tuple[int, int, int],
        noise: float,
        data_seed: int,
        **kw: object,
    ) -> None:
        super().__init__(**kw)  # type: ignore[arg-type]
        self.num_classes = num_classes
        self.shape, self.n, self.noise, self.data_seed = shape, sizes, noise, data_seed

    def load(self) -> None:
        gen = torch.Generator().manual_seed(self.data_seed)
        protos = torch.randn(self.num_classes, *self.shape, generator=gen)
        for split, n in zip(("train", "val", "test"), self.n):
            y = torch.arange(n) % self.num_classes  # balanced classes
            y = y[torch.randperm(n, generator=gen)]
            x = protos[y] + self.noise * torch.randn(n, *self.shape, generator=gen)
            self.splits[split] = (x, y)


@register_data("synthetic")
def synthetic(
    *,
    num_classes: int = 4,
    shape: list[int] = [1, 8, 8],  # noqa: B006 - never mutated
    n_train: int = 512,
    n_val: int = 128,
    n_test: int = 128,
    noise: float = 1.0,
    batch_size: int = 64,
    eval_batch_size: int = 256,
    augment: Augment = Augment(),
    data_seed: int = 0,
    seed: int = 0,
) -> SyntheticClassification:
    """Synthetic classification (no files): tests and quick experiments."""
    return SyntheticClassification(
        num_classes,
        list(shape),
        (n_train, n_val, n_test),
        noise,
        data_seed,
        batch_size=batch_size,
        eval_batch_size=eval_batch_size,
        seed=seed,
        augment=augment,
    )
