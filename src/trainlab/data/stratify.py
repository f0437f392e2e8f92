"""Seeded shuffle splits, stratified or not, without importing scikit-learn.

:func:`shuffle_split` returns exactly what scikit-learn's ``train_test_split(idx,
test_size=…, train_size=…, random_state=seed, stratify=labels)`` returns, index for index
(the same ``RandomState`` draws in the same order; tested against scikit-learn on random
inputs), so every split trainlab made before keeps its samples. It exists because importing
``sklearn.model_selection`` costs ~1 s, a fifth of a training run's start-up.

>>> import numpy as np
>>> train, test = shuffle_split(np.arange(10), test_size=0.2, seed=0, labels=np.arange(10) % 2)
>>> sorted(test % 2)
[0, 1]
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["shuffle_split"]


def _sizes(
    n: int, test_size: float | int | None, train_size: float | int | None
) -> tuple[int, int]:
    """(n_train, n_test) the way scikit-learn rounds them: ceil for a test fraction, floor for
    a train fraction, the rest of the samples for the size not given."""
    if test_size is None and train_size is None:
        test_size = 0.25

    def count(size: float | int | None, rounding: object) -> int | None:
        if size is None:
            return None
        if isinstance(size, float):
            return int(rounding(size * n))  # type: ignore[operator]
        return int(size)

    n_test, n_train = count(test_size, math.ceil), count(train_size, math.floor)
    if n_train is None:
        n_train = n - n_test  # type: ignore[operator]
    if n_test is None:
        n_test = n - n_train
    if n_train <= 0 or n_test <= 0 or n_train + n_test > n:
        raise ValueError(f"cannot split {n} samples into {n_train} train and {n_test} test")
    return n_train, n_test


def _approximate_mode(counts: np.ndarray, n_draws: int, rng: np.random.RandomState) -> np.ndarray:
    """Per-class draws proportional to ``counts`` summing to ``n_draws``; the leftover draws go
    to the largest remainders, ties broken at random (scikit-learn's rule and RNG use)."""
    continuous = counts / counts.sum() * n_draws
    floored = np.floor(continuous)
    need = int(n_draws - floored.sum())
    if need > 0:
        remainder = continuous - floored
        for value in np.sort(np.unique(remainder))[::-1]:
            (inds,) = np.where(remainder == value)
            add_now = min(len(inds), need)
            floored[rng.choice(inds, size=add_now, replace=False)] += 1
            need -= add_now
            if need == 0:
                break
    return floored.astype(int)


def _stratified(
    labels: np.ndarray, n_train: int, n_test: int, rng: np.random.RandomState
) -> tuple[np.ndarray, np.ndarray]:
    classes, y_idx = np.unique(labels, return_inverse=True)
    counts = np.bincount(y_idx)
    if counts.min() < 2 or n_train < len(classes) or n_test < len(classes):
        raise ValueError(
            f"cannot stratify {len(labels)} samples of {len(classes)} classes (smallest class: "
            f"{counts.min()}) into {n_train} train and {n_test} test"
        )
    by_class = np.split(np.argsort(y_idx, kind="mergesort"), np.cumsum(counts)[:-1])
    n_i = _approximate_mode(counts, n_train, rng)
    t_i = _approximate_mode(counts - n_i, n_test, rng)
    train: list[int] = []
    test: list[int] = []
    for i in range(len(classes)):
        members = by_class[i].take(rng.permutation(counts[i]), mode="clip")
        train.extend(members[: n_i[i]])
        test.extend(members[n_i[i] : n_i[i] + t_i[i]])
    return rng.permutation(train), rng.permutation(test)


def shuffle_split(
    idx: np.ndarray,
    *,
    seed: int,
    test_size: float | int | None = None,
    train_size: float | int | None = None,
    labels: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(train, test) entries of ``idx``, shuffled, seeded; class proportions kept when
    ``labels`` (one per entry of ``idx``) are given. Sizes: an int is a count, a float a
    fraction of ``len(idx)`` (test rounded up, train down); either may be left out."""
    idx = np.asarray(idx)
    n_train, n_test = _sizes(len(idx), test_size, train_size)
    rng = np.random.RandomState(seed)
    if labels is None:
        perm = rng.permutation(len(idx))
        train, test = perm[n_test : n_test + n_train], perm[:n_test]
    else:
        train, test = _stratified(np.asarray(labels), n_train, n_test, rng)
    return idx[train], idx[test]
