"""Holdout splits, k-fold generators and class-balanced sampling."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from trainlab.data.fast import FastTensorLoader
from trainlab.data.splits import (
    balanced_order,
    class_weights,
    holdout_split,
    kfold_indices,
    stratified_kfold_indices,
    weighted_sampler,
)
from trainlab.errors import ConfigError, DataError


def test_holdout_sizes_disjoint_stratified_seeded() -> None:
    y = np.array([0] * 60 + [1] * 30 + [2] * 10)
    a = holdout_split(y, val_fraction=0.2, test_fraction=0.1, seed=3)
    assert [len(a[k]) for k in ("train", "val", "test")] == [70, 20, 10]
    assert len(np.unique(np.concatenate(list(a.values())))) == 100  # disjoint, covering
    assert np.bincount(y[a["val"]]).tolist() == [12, 6, 2]  # proportions kept
    b = holdout_split(y, val_fraction=0.2, test_fraction=0.1, seed=3)
    c = holdout_split(y, val_fraction=0.2, test_fraction=0.1, seed=4)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not np.array_equal(a["train"], c["train"])


def test_holdout_errors() -> None:
    with pytest.raises(ConfigError, match="val_fraction \\+ data.test_fraction"):
        holdout_split(10, val_fraction=0.5, test_fraction=0.5, seed=0)
    with pytest.raises(DataError, match="mydata: the test split is empty"):
        holdout_split(3, val_fraction=0.1, test_fraction=0.1, seed=0, where="mydata")
    with pytest.raises(DataError, match="class 'cat' has 2 sample"):
        holdout_split(
            np.array([0] * 10 + [1] * 2),
            val_fraction=0.2,
            test_fraction=0.2,
            seed=0,
            class_names=["dog", "cat"],
        )


def test_kfold_partitions_and_stratifies() -> None:
    folds = list(kfold_indices(23, 5, seed=1))
    assert len(folds) == 5
    val = np.concatenate([v for _, v in folds])
    assert sorted(val.tolist()) == list(range(23))  # every sample validated exactly once
    assert all(len(np.intersect1d(t, v)) == 0 for t, v in folds)
    y = np.array([0] * 40 + [1] * 10)
    for _, v in stratified_kfold_indices(y, 5, seed=0):
        assert np.bincount(y[v]).tolist() == [8, 2]
    with pytest.raises(DataError, match="class 1 has 3 sample"):
        list(stratified_kfold_indices([0] * 10 + [1] * 3, 5))
    with pytest.raises(ConfigError, match="k must be between 2"):
        list(kfold_indices(3, 5))


def test_class_weights_from_counts_and_given() -> None:
    y = torch.tensor([0] * 90 + [1] * 10)
    w = class_weights(y, 3)
    assert w[2] == 0 and w[1] / w[0] == pytest.approx(9.0)
    assert class_weights(y, 2, [1.0, 3.0]).tolist() == [1.0, 3.0]
    with pytest.raises(ConfigError, match="data.class_weights: need 2"):
        class_weights(y, 2, [1.0])


def test_balanced_sampling_over_many_draws() -> None:
    y = torch.tensor([0] * 900 + [1] * 90 + [2] * 10)
    loader = FastTensorLoader(
        torch.zeros(1000, 2), y, batch_size=100, shuffle=True, weights=class_weights(y, 3)[y]
    )
    drawn = torch.cat([yb for ep in range(5) for _, yb in loader.iter_epoch(ep)])
    frac = torch.bincount(drawn, minlength=3).double() / len(drawn)
    assert torch.allclose(frac, torch.full((3,), 1 / 3, dtype=torch.float64), atol=0.03)
    o1, o2 = balanced_order(class_weights(y, 3)[y], 50, seed=7), loader.order(0)
    assert torch.equal(o1, balanced_order(class_weights(y, 3)[y], 50, seed=7))
    assert not torch.equal(loader.order(0), loader.order(1)) and len(o2) == 1000
    sampler = weighted_sampler(y, 3, seed=0)
    counts = torch.bincount(y[torch.tensor(list(sampler) + list(sampler))], minlength=3)
    assert counts.min() > 0.28 * 2000  # every class near a third of 2000 draws (not 1%)
    given = torch.bincount(y[torch.tensor(list(weighted_sampler(y, 3, [1.0, 0.0, 0.0])))])
    assert given.tolist() == [1000]
