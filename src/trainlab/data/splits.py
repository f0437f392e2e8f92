"""Splits and samplers: seeded holdout splits, k-fold index generators, class-balanced sampling.

Everything here works on index arrays (numpy ``int64``), so the same split can be applied to any
storage: tensors in memory, rows of a CSV, files of an image folder.

>>> import numpy as np
>>> y = np.array([0, 1] * 10)
>>> parts = holdout_split(y, val_fraction=0.2, test_fraction=0.2, seed=0, stratify=True)
>>> [len(parts[k]) for k in ("train", "val", "test")]
[12, 4, 4]
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import WeightedRandomSampler

from trainlab.data.stratify import shuffle_split
from trainlab.errors import ConfigError, DataError

__all__ = [
    "train_val_indices",
    "holdout_split",
    "split_off",
    "kfold_indices",
    "stratified_kfold_indices",
    "class_weights",
    "sample_weights",
    "balanced_order",
    "weighted_sampler",
    "check_fractions",
]


def check_fractions(val_fraction: float, test_fraction: float) -> None:
    """Both fractions in (0, 1) and leaving a training split: a :class:`ConfigError` otherwise."""
    for key, f in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        if not 0.0 < f < 1.0:
            raise ConfigError(f"data.{key}: must be between 0 and 1 (got {f})")
    if val_fraction + test_fraction >= 1.0:
        raise ConfigError(
            f"data.val_fraction + data.test_fraction: must be below 1 "
            f"(got {val_fraction} + {test_fraction}); nothing would be left to train on"
        )


def _check_stratifiable(
    y: np.ndarray, n_parts: int, where: str, names: Sequence[str] | None = None
) -> None:
    # sklearn's own message ("The least populated class in y has only 1 member") names neither
    # the file nor the class; every class needs one member per split to be stratified.
    values, counts = np.unique(y, return_counts=True)
    shown = [names[v] if names is not None else v for v in values.tolist()]
    if len(values) < 2:
        raise DataError(f"{where}: only one class ({shown[0]!r}); classification needs two")
    low = np.flatnonzero(counts < n_parts)
    if len(low):
        raise DataError(
            f"{where}: class {shown[low[0]]!r} has {counts[low[0]]} sample(s); a stratified "
            f"split into {n_parts} parts needs at least {n_parts} per class"
        )


def holdout_split(
    y: np.ndarray | int,
    *,
    val_fraction: float,
    test_fraction: float,
    seed: int,
    stratify: bool = True,
    where: str = "data",
    class_names: Sequence[str] | None = None,
) -> dict[str, np.ndarray]:
    """Seeded train/val/test index arrays (sorted) over ``len(y)`` samples.

    ``y`` holds the labels (or is a sample count for unlabelled data); with ``stratify`` every
    split keeps the class proportions. An empty split is a :class:`DataError` naming ``where``
    (and the class, by its name in ``class_names`` when given).
    """
    check_fractions(val_fraction, test_fraction)
    n = y if isinstance(y, int) else len(y)
    labels = None if isinstance(y, int) or not stratify else np.asarray(y)
    if labels is not None:
        _check_stratifiable(labels, 3, where, class_names)
    # A stratified split puts at least one sample of every class in every split.
    least = 1 if labels is None else len(np.unique(labels))
    n_test, n_val = round(n * test_fraction), round(n * val_fraction)
    for split, k in (("test", n_test), ("val", n_val), ("train", n - n_test - n_val)):
        if k < least:
            what = "empty" if k == 0 else f"{k} sample(s) for {least} classes"
            raise DataError(
                f"{where}: the {split} split is {what} ({n} samples, val_fraction={val_fraction},"
                f" test_fraction={test_fraction}); provide more rows or larger fractions"
            )
    idx = np.arange(n)
    # Integer sizes are taken as they are, so the sizes above are the sizes we get.
    rest, test = shuffle_split(idx, test_size=n_test, seed=seed, labels=labels)
    rest_y = None if labels is None else labels[rest]
    train, val = shuffle_split(rest, test_size=n_val, seed=seed + 1, labels=rest_y)
    return {"train": np.sort(train), "val": np.sort(val), "test": np.sort(test)}


def split_off(
    y: np.ndarray,
    fraction: float,
    *,
    name: str,
    seed: int,
    where: str = "data",
    class_names: Sequence[str] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Carve a stratified, seeded ``fraction`` off labelled samples as split ``name``.

    Returns sorted (rest, part) index arrays; either side left without one sample per class is
    a :class:`DataError` naming ``where``. Used where the data ships some splits but not all
    (e.g. an image folder with ``train/`` and ``test/`` but no ``val/``).
    """
    labels = np.asarray(y)
    _check_stratifiable(labels, 2, where, class_names)
    n, least = len(labels), len(np.unique(labels))
    k = round(n * fraction)
    for split, size in ((name, k), ("train", n - k)):
        if size < least:
            what = "empty" if size == 0 else f"{size} sample(s) for {least} classes"
            raise DataError(
                f"{where}: the {split} split is {what} ({n} training samples, "
                f"{name}_fraction={fraction}); provide more images or a larger fraction"
            )
    rest, part = shuffle_split(np.arange(n), test_size=k, seed=seed, labels=labels)
    return np.sort(rest), np.sort(part)


def kfold_indices(
    n: int, k: int = 5, *, seed: int = 0, shuffle: bool = True
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """``k`` (train_idx, val_idx) pairs covering ``range(n)``; each sample is validated once."""
    if not 2 <= k <= n:
        raise ConfigError(f"folds: k must be between 2 and the number of samples {n} (got {k})")
    from sklearn.model_selection import KFold  # lazy: sklearn imports in ~0.5 s

    kf = KFold(n_splits=k, shuffle=shuffle, random_state=seed if shuffle else None)
    yield from kf.split(np.zeros(n))


def stratified_kfold_indices(
    y: Sequence[int] | np.ndarray, k: int = 5, *, seed: int = 0, shuffle: bool = True
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Like :func:`kfold_indices`, with each fold keeping the class proportions of ``y``."""
    labels = np.asarray(y)
    if k < 2:
        raise ConfigError(f"folds: k must be at least 2 (got {k})")
    _check_stratifiable(labels, k, "folds")
    from sklearn.model_selection import StratifiedKFold  # lazy: sklearn imports in ~0.5 s

    skf = StratifiedKFold(n_splits=k, shuffle=shuffle, random_state=seed if shuffle else None)
    yield from skf.split(np.zeros(len(labels)), labels)


def class_weights(
    y: torch.Tensor, num_classes: int, given: Sequence[float] | None = None
) -> torch.Tensor:
    """Per-class weights (num_classes,): ``given`` as is, else inverse label frequency.

    Absent classes get weight 0 (nothing to draw); weights are scaled to sum to num_classes.
    """
    if given is not None:
        if len(given) != num_classes or any(w < 0 for w in given):
            raise ConfigError(
                f"data.class_weights: need {num_classes} non-negative numbers (got {list(given)})"
            )
        return torch.tensor(given, dtype=torch.float64)
    counts = torch.bincount(y.long().cpu(), minlength=num_classes).double()
    w = torch.where(counts > 0, 1.0 / counts.clamp_min(1), torch.zeros_like(counts))
    return w * (num_classes / w.sum())


def sample_weights(
    y: torch.Tensor, num_classes: int, given: Sequence[float] | None = None
) -> torch.Tensor:
    """Per-sample weights (N,) float64 so that each class is drawn equally often in expectation."""
    return class_weights(y, num_classes, given)[y.long().cpu()]


def balanced_order(weights: torch.Tensor, n: int, seed: int) -> torch.Tensor:
    """``n`` sample indices drawn with replacement in proportion to ``weights`` (N,), seeded.

    The in-memory path's sampler: a :class:`~trainlab.data.memory.TensorLoader` epoch order.
    """
    gen = torch.Generator().manual_seed(seed)
    return torch.multinomial(weights.double(), n, replacement=True, generator=gen)


def weighted_sampler(
    y: torch.Tensor, num_classes: int, given: Sequence[float] | None = None, *, seed: int = 0
) -> WeightedRandomSampler:
    """A class-balanced :class:`WeightedRandomSampler` for ``DataLoader`` paths (one epoch =
    ``len(y)`` draws with replacement)."""
    gen = torch.Generator().manual_seed(seed)
    w = sample_weights(y, num_classes, given)
    return WeightedRandomSampler(w.tolist(), num_samples=len(y), replacement=True, generator=gen)


def train_val_indices(
    y: torch.Tensor, subset: int | None, val_fraction: float, split_seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Stratified, seeded train/val indices into ``y`` after an optional stratified subset
    (Fashion-MNIST, MNIST and CIFAR-10 split their training files this way).

    >>> tr, va = train_val_indices(torch.arange(100) % 10, 50, 0.2, 0)
    >>> len(tr), len(va)
    (40, 10)
    """
    idx = np.arange(len(y))
    labels = y.numpy()
    if subset is not None and subset < len(idx):
        idx, _ = shuffle_split(idx, train_size=subset, labels=labels, seed=split_seed)
    return shuffle_split(idx, test_size=val_fraction, labels=labels[idx], seed=split_seed)
