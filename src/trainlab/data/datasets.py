"""Your own ``torch.utils.data.Dataset`` (or tensors) as a trainlab data module.

Each split is read once into memory tensors (the fast path trainlab batches on, with exact
mid-epoch resume), so this fits datasets that fit in memory; samples must be ``(x, y)`` pairs.

>>> import torch
>>> from torch.utils.data import TensorDataset
>>> ds = TensorDataset(torch.randn(100, 4), torch.arange(100) % 2)
>>> data = from_datasets(ds, val_fraction=0.2, batch_size=16)
>>> data.setup("cpu")
>>> data.sizes, data.num_classes
({'train': 80, 'val': 20}, 2)
"""

from __future__ import annotations

from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset

from trainlab.data.augment import Augment
from trainlab.data.memory import TensorDataModule
from trainlab.errors import DataError

__all__ = ["DatasetModule", "from_datasets"]

Source = Dataset[Any] | tuple[torch.Tensor, torch.Tensor]


class DatasetModule(TensorDataModule):
    """Splits from datasets or ``(x, y)`` tensors; ``val_fraction`` of train becomes ``val``
    when no ``val`` split is given (a seeded random share)."""

    def __init__(
        self,
        sources: dict[str, Source],
        *,
        num_classes: int | None = None,
        val_fraction: float = 0.0,
        **kw: Any,
    ) -> None:
        super().__init__(**kw)
        if "train" not in sources:
            raise DataError("from_datasets: a 'train' split is needed")
        if not 0.0 <= val_fraction < 1.0:
            raise DataError(f"from_datasets: val_fraction={val_fraction} must be in [0, 1)")
        self.sources, self.val_fraction = sources, val_fraction
        self.num_classes = num_classes

    def load(self) -> None:
        splits = {name: _as_tensors(src, name) for name, src in self.sources.items()}
        if "val" not in splits and self.val_fraction > 0:
            x, y = splits["train"]
            gen = torch.Generator().manual_seed(self.seed)
            order = torch.randperm(len(y), generator=gen)
            n_val = max(1, round(self.val_fraction * len(y)))
            splits["val"] = (x[order[:n_val]], y[order[:n_val]])
            splits["train"] = (x[order[n_val:]], y[order[n_val:]])
        y = splits["train"][1]
        if self.num_classes is None and not y.is_floating_point() and y.dim() == 1:
            self.num_classes = int(max(int(t[1].max()) for t in splits.values() if len(t[1])) + 1)
        self.splits = {k: splits[k] for k in ("train", "val", "test") if k in splits}


def _as_tensors(src: Source, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """All of a split's samples as ``(x, y)`` stacked along a new first dimension."""
    if isinstance(src, tuple):
        x, y = src
        if len(x) != len(y):
            raise DataError(f"from_datasets: split '{split}' has {len(x)} inputs, {len(y)} labels")
        return torch.as_tensor(x), torch.as_tensor(y)
    xs, ys = [], []
    try:
        for batch in DataLoader(src, batch_size=512, num_workers=0):
            x, y = batch
            xs.append(torch.as_tensor(x))
            ys.append(torch.as_tensor(y))
    except (TypeError, ValueError, RuntimeError) as e:
        raise DataError(
            f"from_datasets: split '{split}': samples must be (x, y) pairs of tensors or numbers "
            f"of one shape ({type(e).__name__}: {e})"
        ) from None
    if not xs:
        raise DataError(f"from_datasets: split '{split}' is empty")
    return torch.cat(xs), torch.cat(ys)


def from_datasets(
    train: Source,
    val: Source | None = None,
    test: Source | None = None,
    *,
    batch_size: int = 64,
    eval_batch_size: int = 256,
    seed: int = 0,
    num_classes: int | None = None,
    val_fraction: float = 0.0,
    normalize: bool = True,
    augment: Augment | None = None,
) -> DatasetModule:
    """A data module over your own datasets (or ``(x, y)`` tensors), for a registered data
    source to return. ``num_classes`` defaults to 1 + the largest integer label; float labels
    mean regression. ``normalize`` standardises inputs with the training split's per-channel
    (per-feature for tables) statistics.

    >>> @register_data("my_digits")                              # doctest: +SKIP
    ... def my_digits(*, batch_size: int = 64, seed: int = 0):
    ...     return from_datasets(MyDigits("train"), test=MyDigits("test"), val_fraction=0.1,
    ...                          batch_size=batch_size, seed=seed)
    """
    sources = {"train": train, "val": val, "test": test}
    return DatasetModule(
        {k: v for k, v in sources.items() if v is not None},
        num_classes=num_classes,
        val_fraction=val_fraction,
        batch_size=batch_size,
        eval_batch_size=eval_batch_size,
        seed=seed,
        augment=augment,
        normalize=normalize,
    )
