"""Cross-validation folds as data: ``cv_fold`` trains on one fold of another source's pool.

The *pool* of a source is its training data: its ``train`` and ``val`` splits together (rows
in dataset order when the source records them in ``split_indices``, else train then val). Its
``test`` split is carried along unchanged and never enters a fold. A fold is one
(train, held-out) pair of pool positions drawn by scikit-learn's splitters with a seed; the
held-out part becomes the ``val`` split. So a fold run is an ordinary run, and its
``config.yaml`` names the fold:

.. code-block:: yaml

    data:
      name: cv_fold
      source: {name: iris, batch_size: 32, val_fraction: 0.2, test_fraction: 0.2, split_seed: 0}
      scheme: stratified        # kfold | stratified | loo | all (all: the whole pool, no val)
      folds: 5
      repeats: 1
      repeat: 0
      index: 2
      fold_seed: 0

>>> import numpy as np
>>> splits = fold_splits(10, None, scheme="kfold", folds=5, seed=0)
>>> len(splits), sorted(np.concatenate([va for _, _, _, va in splits]).tolist()) == list(range(10))
(5, True)
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import torch

from trainlab.data.base import DATA, register_data
from trainlab.data.memory import TensorDataModule, channel_stats
from trainlab.errors import ConfigError
from trainlab.registry import keyword_options

__all__ = ["Scheme", "FoldData", "cv_fold", "fold_splits", "build_source", "pool_of"]

Scheme = Literal["kfold", "stratified", "loo", "all"]
Fold = tuple[int, int, np.ndarray, np.ndarray]  # (repeat, index, train positions, val positions)


def fold_splits(
    n: int,
    labels: np.ndarray | None,
    *,
    scheme: str,
    folds: int,
    seed: int,
    repeats: int = 1,
) -> list[Fold]:
    """Every fold of ``scheme`` over ``n`` pool positions, as scikit-learn draws them.

    ``kfold``/``stratified``: ``KFold``/``StratifiedKFold(folds, shuffle=True,
    random_state=seed)``, or ``RepeatedKFold``/``RepeatedStratifiedKFold`` when ``repeats`` > 1;
    ``loo``: ``LeaveOneOut`` (``n`` folds, no seed); ``all``: one "fold" training on everything.
    Impossible requests are a :class:`ConfigError` (or a ``DataError`` naming a class too small
    to stratify).
    """
    from sklearn import model_selection as ms  # lazy: sklearn imports in ~0.5 s

    if scheme == "all":
        return [(0, 0, np.arange(n), np.arange(0))]
    if scheme == "loo":
        return [(0, i, tr, va) for i, (tr, va) in enumerate(ms.LeaveOneOut().split(np.zeros(n)))]
    check_folds(n, labels, scheme=scheme, folds=folds, repeats=repeats)
    stratified = scheme == "stratified"
    if repeats > 1:
        cls = ms.RepeatedStratifiedKFold if stratified else ms.RepeatedKFold
        splitter: Any = cls(n_splits=folds, n_repeats=repeats, random_state=seed)
    else:
        cls = ms.StratifiedKFold if stratified else ms.KFold
        splitter = cls(n_splits=folds, shuffle=True, random_state=seed)
    parts = splitter.split(np.zeros(n), labels if stratified else None)
    return [(i // folds, i % folds, tr, va) for i, (tr, va) in enumerate(parts)]


def check_folds(
    n: int, labels: np.ndarray | None, *, scheme: str, folds: int, repeats: int = 1
) -> None:
    """The checks :func:`fold_splits` makes, without drawing: one-line errors naming the option."""
    from trainlab.data.splits import _check_stratifiable

    if scheme not in ("kfold", "stratified", "loo", "all"):
        raise ConfigError(f"data.scheme: unknown '{scheme}'; valid: kfold, stratified, loo, all")
    if repeats < 1:
        raise ConfigError(f"repeats: must be at least 1 (got {repeats})")
    if scheme in ("loo", "all"):
        return
    if not 2 <= folds <= n:
        raise ConfigError(
            f"folds: must be between 2 and the {n} samples of the training pool (got {folds})"
        )
    if scheme == "stratified":
        if labels is None:
            raise ConfigError(
                "stratified: needs class labels; this data is a regression target "
                "(use plain k-fold)"
            )
        _check_stratifiable(np.asarray(labels), folds, "stratified folds")


def build_source(source: dict[str, Any], seed: int) -> TensorDataModule:
    """The source data module named by ``source`` (options checked, paths ``data.source.*``)."""
    from trainlab.config.validate import validate_options

    opts = dict(source)
    name = opts.pop("name", None)
    if not isinstance(name, str):
        raise ConfigError("data.source.name: required (the data source to cross-validate)")
    if name == "cv_fold":
        raise ConfigError("data.source.name: a cv_fold cannot be the source of another")
    fn = DATA.get(name, where="data.source.name")
    if "seed" in keyword_options(fn):
        opts.setdefault("seed", seed)
    module = fn(**validate_options(fn, opts, where="data.source", entry=f"data '{name}'"))
    if not isinstance(module, TensorDataModule):
        raise ConfigError(
            f"data.source.name: '{name}' reads its samples from disk per batch; "
            "cross-validation needs an in-memory source (tables, sklearn sets, MNIST-like, text)"
        )
    return module


def pool_of(module: TensorDataModule) -> tuple[torch.Tensor, torch.Tensor, np.ndarray | None]:
    """``(x, y, rows)`` of the pool of a loaded (CPU) module; ``rows`` are dataset row numbers
    when the source records them, else ``None``."""
    (xt, yt), (xv, yv) = module.splits["train"], module.splits["val"]
    x, y = torch.cat([xt, xv]), torch.cat([yt, yv])
    parts = getattr(module, "split_indices", None) or {}
    if "train" in parts and "val" in parts:
        rows = np.concatenate([parts["train"], parts["val"]])
        order = np.argsort(rows, kind="stable")  # dataset order: folds do not depend on holdout
        return x[torch.from_numpy(order)], y[torch.from_numpy(order)], rows[order]
    return x, y, None


def pool_labels(module: TensorDataModule, y: torch.Tensor) -> np.ndarray | None:
    """Class labels of the pool for stratification, ``None`` for regression-like targets."""
    if module.num_classes is None or y.dtype.is_floating_point or y.dim() != 1:
        return None
    return y.numpy()


class FoldData:
    """One cross-validation fold of an in-memory source: ``train``/``val`` are the fold's parts
    of the source's pool, ``test`` is the source's test split, untouched.

    Normalisation statistics (for sources that normalise in ``setup``) come from the fold's
    training part only.
    """

    def __init__(
        self, source: TensorDataModule, *, scheme: str, folds: int, repeats: int, repeat: int,
        index: int, fold_seed: int,
    ) -> None:  # fmt: skip
        self.source = source
        self.scheme, self.folds, self.repeats = scheme, folds, repeats
        self.repeat, self.index, self.fold_seed = repeat, index, fold_seed
        self.num_classes: int | None = None
        self.input_shape: tuple[int, ...] = ()
        self.sizes: dict[str, int] = {}
        self.fold_positions: dict[str, np.ndarray] = {}  # positions in the pool
        self.split_indices: dict[str, np.ndarray] = {}  # dataset rows, where the source has them

    @property
    def classes(self) -> list[str] | None:
        return getattr(self.source, "classes", None)

    @property
    def splits(self) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        return self.source.splits

    def setup(self, device: torch.device | str = "cpu") -> None:
        src = self.source
        if not self.fold_positions:
            src.load()
            x, y, rows = pool_of(src)
            train, val = self._pick(len(x), pool_labels(src, y))
            self.fold_positions = {"train": train, "val": val}
            tr, va = torch.from_numpy(train), torch.from_numpy(val)
            src.splits = {
                "train": (x[tr], y[tr]),
                "val": (x[va], y[va]),
                "test": src.splits["test"],
            }
            if src.normalize:  # the fold's own training statistics, never its held-out part
                src.mean, src.std = channel_stats(src.splits["train"][0])
            test_rows = getattr(src, "split_indices", {}).get("test")
            if rows is not None and test_rows is not None:
                self.split_indices = {"train": rows[train], "val": rows[val], "test": test_rows}
        src.setup(device)  # splits are filled: moves them to the device, sets shapes and sizes
        self.num_classes, self.input_shape, self.sizes = src.num_classes, src.input_shape, src.sizes

    def _pick(self, n: int, labels: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        splits = fold_splits(n, labels, scheme=self.scheme, folds=self.folds,
                             seed=self.fold_seed, repeats=self.repeats)  # fmt: skip
        for r, k, train, val in splits:
            if (r, k) == (self.repeat, self.index):
                return train, val
        raise ConfigError(
            f"data.index: fold ({self.repeat}, {self.index}) does not exist; this scheme has "
            f"{len(splits)} folds (repeat 0..{splits[-1][0]}, index 0..{splits[-1][1]})"
        )

    def loader(self, split: str) -> Any:
        return self.source.loader(split)

    def describe(self) -> dict[str, Any]:
        keys = ("scheme", "folds", "repeats", "repeat", "index", "fold_seed")
        fold = {k: getattr(self, k) for k in keys}
        return {**self.source.describe(), "fold": fold}


@register_data("cv_fold")
def cv_fold(
    *,
    source: dict[str, Any],
    scheme: Scheme = "kfold",
    folds: int = 5,
    repeats: int = 1,
    repeat: int = 0,
    index: int = 0,
    fold_seed: int = 0,
    seed: int = 0,
) -> FoldData:
    """Fold ``index`` (of repeat ``repeat``) of ``source``'s train+val pool: that fold's
    held-out part is the ``val`` split; the source's ``test`` split is kept as it is.
    ``trainlab cv`` writes these; ``trainlab train <fold>/config.yaml`` retrains the same fold."""
    module = build_source(source, seed)
    if scheme != "loo" and scheme != "all" and folds < 2:
        raise ConfigError(f"data.folds: must be at least 2 (got {folds})")
    return FoldData(module, scheme=scheme, folds=folds, repeats=repeats, repeat=repeat,
                    index=index, fold_seed=fold_seed)  # fmt: skip
