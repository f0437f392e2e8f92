"""trainlab's own shuffle split gives scikit-learn's ``train_test_split`` results exactly."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.model_selection import train_test_split

from trainlab.data.splits import train_val_indices
from trainlab.data.stratify import shuffle_split


@st.composite
def split_cases(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray | None, dict, int]:
    k = draw(st.integers(2, 6))
    n = draw(st.integers(4 * k, 300))
    rest = draw(st.lists(st.integers(0, k - 1), min_size=n - 2 * k, max_size=n - 2 * k))
    y = np.array([c for c in range(k) for _ in range(2)] + rest)
    kind = draw(st.sampled_from(["test_float", "test_int", "train_int", "both_float"]))
    if kind == "test_float":
        sizes = {"test_size": draw(st.floats(0.1, 0.5))}
    elif kind == "test_int":
        sizes = {"test_size": draw(st.integers(k, n // 2))}
    elif kind == "train_int":
        sizes = {"train_size": draw(st.integers(k, n // 2))}
    else:
        sizes = {"train_size": draw(st.floats(0.3, 0.6)), "test_size": draw(st.floats(0.1, 0.3))}
    labels = y if draw(st.booleans()) else None
    return np.arange(n) + 7, labels, sizes, draw(st.integers(0, 2**31 - 1))


@settings(max_examples=150, deadline=None)
@given(split_cases())
def test_same_indices_as_scikit_learn(case: tuple) -> None:
    idx, labels, sizes, seed = case
    try:
        want = train_test_split(idx, random_state=seed, stratify=labels, **sizes)
    except ValueError:  # too few samples for the classes: both refuse
        with pytest.raises(ValueError):
            shuffle_split(idx, seed=seed, labels=labels, **sizes)
        return
    got = shuffle_split(idx, seed=seed, labels=labels, **sizes)
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_array_equal(got[1], want[1])


def test_ties_in_class_remainders_are_broken_like_scikit_learn() -> None:
    # Three classes of 5 into 4 test samples: every class has the same remainder, so the
    # extra sample goes to a class drawn from the RNG.
    y = np.repeat(np.arange(3), 5)
    for seed in range(20):
        want = train_test_split(np.arange(15), test_size=4, random_state=seed, stratify=y)
        got = shuffle_split(np.arange(15), test_size=4, seed=seed, labels=y)
        np.testing.assert_array_equal(got[1], want[1])


def test_fashion_mnist_sized_split_unchanged() -> None:
    # The split every Fashion-MNIST run uses: 60,000 labels, 10 % validation, seed 0.
    y = np.random.default_rng(0).integers(0, 10, 60_000)
    tr, va = train_val_indices(__import__("torch").from_numpy(y), None, 0.1, 0)
    want_tr, want_va = train_test_split(np.arange(60_000), test_size=0.1, stratify=y,
                                        random_state=0)  # fmt: skip
    np.testing.assert_array_equal(tr, want_tr)
    np.testing.assert_array_equal(va, want_va)


def test_impossible_stratification_is_refused() -> None:
    with pytest.raises(ValueError, match="cannot stratify"):
        shuffle_split(np.arange(6), test_size=2, seed=0, labels=np.array([0, 0, 0, 0, 0, 1]))
