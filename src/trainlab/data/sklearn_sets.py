"""scikit-learn's bundled real datasets: no network, no files to manage.

=============  ========  ==========  ============================================
key            samples   input       target
=============  ========  ==========  ============================================
digits         1,797     (1, 8, 8)   10 classes (handwritten digits, values 0..16)
iris           150       (4,)        3 classes
wine           178       (13,)       3 classes
breast_cancer  569       (30,)       2 classes
diabetes       442       (10,)       regression (disease progression, float)
=============  ========  ==========  ============================================

Splits are seeded train/val/test holdouts, stratified for the classification sets; inputs are
standardised per feature (per channel for digits) with statistics from the training split only.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from trainlab.data.augment import Augment
from trainlab.data.base import register_data
from trainlab.data.fast import FastTensorLoader, memory_loader
from trainlab.data.memory import TensorDataModule
from trainlab.data.splits import check_fractions, holdout_split

__all__ = ["SklearnData", "digits", "iris", "wine", "breast_cancer", "diabetes"]


def _bunch(name: str) -> tuple[np.ndarray, np.ndarray, list[str] | None]:
    import sklearn.datasets as ds  # lazy: only the set asked for is read

    loaders: dict[str, Callable[[], object]] = {
        "digits": ds.load_digits,
        "iris": ds.load_iris,
        "wine": ds.load_wine,
        "breast_cancer": ds.load_breast_cancer,
        "diabetes": ds.load_diabetes,
    }
    b = loaders[name]()
    names = getattr(b, "target_names", None)
    return b.data, b.target, None if names is None else [str(n) for n in names]  # type: ignore[attr-defined]


class SklearnData(TensorDataModule):
    """One of scikit-learn's bundled datasets as in-memory tensors."""

    def __init__(
        self,
        name: str,
        val_fraction: float,
        test_fraction: float,
        split_seed: int,
        balance: bool,
        class_weights: list[float] | None,
        **kw: object,
    ) -> None:
        super().__init__(**kw)  # type: ignore[arg-type]
        check_fractions(val_fraction, test_fraction)
        self.name, self.val_fraction, self.test_fraction = name, val_fraction, test_fraction
        self.split_seed, self.balance, self.class_weights = split_seed, balance, class_weights
        self.classes: list[str] | None = None
        self.split_indices: dict[str, np.ndarray] = {}

    def load(self) -> None:
        data, target, self.classes = _bunch(self.name)
        x = torch.from_numpy(data.astype(np.float32))
        if self.name == "digits":
            x = x.view(-1, 1, 8, 8)  # images: convolutional models see (C, H, W)
        if self.classes is None:  # regression
            y = torch.from_numpy(target.astype(np.float32))
        else:
            self.num_classes = len(self.classes)
            y = torch.from_numpy(target.astype(np.int64))
        self.split_indices = holdout_split(
            target,
            val_fraction=self.val_fraction,
            test_fraction=self.test_fraction,
            seed=self.split_seed,
            stratify=self.classes is not None,
            where=f"data '{self.name}'",
        )
        ix = {k: torch.from_numpy(v) for k, v in self.split_indices.items()}
        self.splits = {k: (x[i], y[i]) for k, i in ix.items()}

    def loader(self, split: str) -> FastTensorLoader:
        return memory_loader(self, split, balance=self.balance, class_weights=self.class_weights)


def _make(name: str, **kw: object) -> SklearnData:
    return SklearnData(
        name,
        kw.pop("val_fraction"),
        kw.pop("test_fraction"),
        kw.pop("split_seed"),  # type: ignore[arg-type]
        kw.pop("balance", False),
        kw.pop("class_weights", None),
        **kw,  # type: ignore[arg-type]
    )


@register_data("digits")
def digits(
    *,
    batch_size: int = 64,
    eval_batch_size: int = 512,
    val_fraction: float = 0.15,
    test_fraction: float = 0.15,
    split_seed: int = 0,
    augment: Augment = Augment(),
    balance: bool = False,
    class_weights: list[float] | None = None,
    seed: int = 0,
) -> SklearnData:
    """8×8 handwritten digits as (1, 8, 8) images, 10 classes; ``augment`` as for images."""
    return _make(
        "digits",
        batch_size=batch_size,
        eval_batch_size=eval_batch_size,
        augment=augment,
        val_fraction=val_fraction,
        test_fraction=test_fraction,
        split_seed=split_seed,
        balance=balance,
        class_weights=class_weights,
        seed=seed,
    )


def _table(name: str) -> Callable[..., SklearnData]:
    # iris, wine and breast_cancer take the same options: one builder shape, three registrations.
    def build(
        *,
        batch_size: int = 32,
        eval_batch_size: int = 512,
        val_fraction: float = 0.2,
        test_fraction: float = 0.2,
        split_seed: int = 0,
        balance: bool = False,
        class_weights: list[float] | None = None,
        seed: int = 0,
    ) -> SklearnData:
        return _make(
            name,
            batch_size=batch_size,
            eval_batch_size=eval_batch_size,
            val_fraction=val_fraction,
            test_fraction=test_fraction,
            split_seed=split_seed,
            balance=balance,
            class_weights=class_weights,
            seed=seed,
        )

    build.__name__ = build.__qualname__ = name
    build.__doc__ = f"scikit-learn's bundled '{name}' table, stratified and standardised."
    return register_data(name)(build)


iris = _table("iris")
wine = _table("wine")
breast_cancer = _table("breast_cancer")


@register_data("diabetes")
def diabetes(
    *,
    batch_size: int = 32,
    eval_batch_size: int = 512,
    val_fraction: float = 0.2,
    test_fraction: float = 0.2,
    split_seed: int = 0,
    seed: int = 0,
) -> SklearnData:
    """Diabetes progression (regression): 10 features, float target of shape (N,)."""
    return _make(
        "diabetes",
        batch_size=batch_size,
        eval_batch_size=eval_batch_size,
        val_fraction=val_fraction,
        test_fraction=test_fraction,
        split_seed=split_seed,
        seed=seed,
    )
