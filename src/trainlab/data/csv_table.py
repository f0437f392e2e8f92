"""CSV/TSV tables: a target column, numeric and categorical features, classification or regression.

Everything learnt from data comes from the **training split only**: standardisation statistics,
fill values for missing cells (mean / most frequent) and the category vocabularies. A category
unseen in training encodes as all zeros (one-hot) or code 0 (codes).

Features in ``x`` (N, F) float32, in this order: the numeric columns (standardised by the loader
with ``mean``/``std`` from train), then the categorical ones, either one-hot (one column per
training category) or, with ``encoding: codes``, one column of integer codes 1..K per feature
(0 = unknown), passed through unscaled for an ``nn.Embedding`` (``x[:, cols].long()``).
``describe()`` lists the feature names and the (column, vocabulary size) of each code.

Bad rows (a ragged row, a non-numeric or infinite cell in a numeric column, a label outside
``data.classes``) stop loading with an error naming file, line and column; with
``on_error: skip`` they are dropped, counted in ``describe()["skipped"]`` (first 20 listed in
``skipped_rows``) and reported in one warning. Missing cells follow ``missing`` instead.
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Literal

import numpy as np
import torch

from trainlab.data.base import register_data
from trainlab.data.fast import FastTensorLoader, memory_loader
from trainlab.data.memory import TensorDataModule
from trainlab.data.splits import check_fractions, holdout_split
from trainlab.data.tabular_io import (
    OnError,
    Table,
    numeric_column,
    read_table,
    report_skipped,
    text_column,
)
from trainlab.errors import ConfigError, DataError

__all__ = ["CsvTable", "csv_table"]

Missing = Literal["error", "drop", "fill"]


def _labels(table: Table, target: str, classes: list[str] | None, keep: np.ndarray) -> list[str]:
    """The class list: ``classes`` when given (checked by :func:`_check_labels`), else sorted."""
    if classes is not None:
        return list(classes)
    col = text_column(table, target)
    found = sorted({v for v, k in zip(col, keep, strict=True) if k and v is not None})
    ints = all(v.lstrip("-").isdigit() for v in found)
    return sorted(found, key=int) if ints else found


def _check_labels(table: Table, target: str, classes: list[str] | None) -> None:
    """Each label must be one of ``classes`` (when given): a bad row otherwise."""
    if classes is None:
        return
    allowed = set(classes)
    for i, v in enumerate(text_column(table, target)):
        if v is not None and v not in allowed:
            table.bad(
                table.lines[i],
                f", column '{target}': label {v!r} is not one of data.classes "
                f"({', '.join(classes)})",
            )


def _missing_mask(v: np.ndarray | list[str | None]) -> np.ndarray:
    return np.array([c is None for c in v], dtype=bool) if isinstance(v, list) else np.isnan(v)


def _first_missing(table: Table, cols: dict[str, Any], rows: np.ndarray) -> str:
    for i in np.flatnonzero(rows):
        for name, v in cols.items():
            if (v[i] is None) if isinstance(v, list) else np.isnan(v[i]):
                return f"{table.path}: line {table.lines[i]}, column '{name}': missing value"
    return f"{table.path}: missing value"


class CsvTable(TensorDataModule):
    """A table read from one CSV/TSV file and split into train/val/test."""

    def __init__(self, path: str, target: str, opts: dict[str, Any], **kw: object) -> None:
        super().__init__(normalize=False, **kw)  # type: ignore[arg-type]
        self.path, self.target, self.opts = path, target, opts
        self.task: str = opts["task"]
        self.feature_names: list[str] = []
        self.codes: list[tuple[int, int]] = []  # (column in x, vocabulary size incl. unknown)
        self.classes: list[str] | None = None
        self.split_indices: dict[str, np.ndarray] = {}
        self.skipped_rows: list[str] = []  # "line N: reason" of rows dropped by on_error: skip

    def load(self) -> None:
        table = read_table(self.path, self.opts["delimiter"], self.opts["on_error"])
        numeric, categorical = self._columns(table)
        y_raw = self._target(table)
        cols: dict[str, Any] = {
            n: numeric_column(
                table, n, "; list the column in data.categorical if it holds categories"
            )
            for n in numeric
        }
        cols.update({n: text_column(table, n) for n in categorical})
        if self.task == "classification":
            _check_labels(table, self.target, self.opts["classes"])
        keep = self._keep_rows(table, cols, y_raw)
        self.skipped_rows = report_skipped(table, int(keep.sum()))
        y = self._encode_target(table, y_raw, keep)
        parts = holdout_split(
            y.numpy(),
            val_fraction=self.opts["val_fraction"],
            seed=self.opts["split_seed"],
            test_fraction=self.opts["test_fraction"],
            stratify=self.task == "classification",
            where=f"{table.path} ({len(y)} usable rows)",
            class_names=self.classes,
        )
        rows = np.flatnonzero(keep)
        self.split_indices = {k: rows[v] for k, v in parts.items()}
        x = self._features(cols, numeric, categorical, parts["train"], rows)
        ix = {k: torch.from_numpy(v) for k, v in parts.items()}
        self.splits = {k: (x[i], y[i]) for k, i in ix.items()}

    def _columns(self, table: Table) -> tuple[list[str], list[str]]:
        table.col(self.target, "target column")
        categorical = list(self.opts["categorical"] or [])
        for c in categorical + list(self.opts["features"] or []):
            table.col(c, "feature column")
        features = self.opts["features"] or [h for h in table.header if h != self.target]
        features = [f for f in features if f not in (self.opts["ignore"] or [])]
        if self.target in features:
            raise ConfigError(f"data.features: the target '{self.target}' is also a feature")
        if not features:
            raise DataError(f"{table.path}: no feature columns besides the target")
        numeric = [f for f in features if f not in categorical]
        return numeric, [f for f in features if f in categorical]

    def _target(self, table: Table) -> Any:
        if self.task == "regression":
            return numeric_column(table, self.target)
        return text_column(table, self.target)

    def _keep_rows(self, table: Table, cols: dict[str, Any], y_raw: Any) -> np.ndarray:
        bad = table.bad_rows()  # skipped bad rows: their NaNs are not missing cells
        miss = np.zeros(len(table.rows), dtype=bool)
        for v in list(cols.values()) + [y_raw]:
            miss |= _missing_mask(v)
        miss &= ~bad
        if self.opts["missing"] == "error" and miss.any():
            raise DataError(
                _first_missing(table, {**cols, self.target: y_raw}, miss)
                + " (data.missing: error; use drop or fill to accept missing cells)"
            )
        if self.opts["missing"] == "drop":
            return ~miss & ~bad
        # fill: features are filled later from train statistics; a missing target cannot be.
        return ~_missing_mask(y_raw) & ~bad

    def _encode_target(self, table: Table, y_raw: Any, keep: np.ndarray) -> torch.Tensor:
        if self.task == "regression":
            return torch.from_numpy(y_raw[keep].astype(np.float32))
        self.classes = _labels(table, self.target, self.opts["classes"], keep)
        self.num_classes = len(self.classes)
        index = {c: i for i, c in enumerate(self.classes)}
        codes = [index[v] for v, k in zip(y_raw, keep, strict=True) if k]
        return torch.tensor(codes, dtype=torch.int64)

    def _features(
        self,
        cols: dict[str, Any],
        numeric: list[str],
        categorical: list[str],
        train: np.ndarray,
        rows: np.ndarray,
    ) -> torch.Tensor:
        blocks, mean, std, names = [], [], [], []
        for name in numeric:
            v = cols[name][rows]
            tv = v[train][~np.isnan(v[train])]
            if len(tv) == 0:
                raise DataError(f"{self.path}: column '{name}' has no values in the train split")
            m, s = float(tv.mean()), float(tv.std())
            blocks.append(np.where(np.isnan(v), m, v)[:, None])  # fill: train mean
            mean.append(m)
            std.append(s if s > 0 else 1.0)  # a constant column stays constant, not NaN
            names.append(name)
        for name in categorical:
            block, col_names, k = self._categorical(name, [cols[name][i] for i in rows], train)
            if self.opts["encoding"] == "codes":
                self.codes.append((len(names), k + 1))  # embedding rows: K categories + unknown
            blocks.append(block)
            mean += [0.0] * block.shape[1]
            std += [1.0] * block.shape[1]
            names += col_names
        self.mean, self.std, self.feature_names = mean, std, names
        return torch.from_numpy(np.concatenate(blocks, axis=1).astype(np.float32))

    def _categorical(
        self, name: str, values: list[str | None], train: np.ndarray
    ) -> tuple[np.ndarray, list[str], int]:
        counts = Counter(values[i] for i in train if values[i] is not None)
        if not counts:
            raise DataError(f"{self.path}: column '{name}' has no values in the train split")
        mode = counts.most_common(1)[0][0]
        vocab = {c: i + 1 for i, c in enumerate(sorted(counts))}  # 0 = unseen in train
        codes = np.array([vocab.get(mode if v is None else v, 0) for v in values])
        if self.opts["encoding"] == "codes":
            return codes[:, None].astype(np.float64), [name], len(vocab)
        onehot = np.zeros((len(values), len(vocab)), dtype=np.float64)
        known = codes > 0
        onehot[np.flatnonzero(known), codes[known] - 1] = 1.0
        return onehot, [f"{name}={c}" for c in sorted(counts)], len(vocab)

    def loader(self, split: str) -> FastTensorLoader:
        return memory_loader(
            self, split, balance=self.opts["balance"], class_weights=self.opts["class_weights"]
        )

    def describe(self) -> dict[str, Any]:
        return super().describe() | {
            "task": self.task,
            "features": self.feature_names,
            "classes": self.classes,
            "codes": self.codes,
            "skipped": len(self.skipped_rows),
            "skipped_rows": self.skipped_rows[:20],
        }


@register_data("csv")
def csv_table(
    *,
    path: str,
    target: str,
    task: Literal["classification", "regression"] = "classification",
    features: list[str] | None = None,
    categorical: list[str] | None = None,
    ignore: list[str] | None = None,
    encoding: Literal["onehot", "codes"] = "onehot",
    missing: Missing = "error",
    on_error: OnError = "raise",
    classes: list[str] | None = None,
    delimiter: str | None = None,
    val_fraction: float = 0.15,
    test_fraction: float = 0.15,
    split_seed: int = 0,
    balance: bool = False,
    class_weights: list[float] | None = None,
    batch_size: int = 64,
    eval_batch_size: int = 1024,
    seed: int = 0,
) -> CsvTable:
    """A CSV/TSV file with a header row; ``target`` names the label (or value) column.

    ``features`` defaults to every other column (minus ``ignore``); those listed in
    ``categorical`` are encoded (``onehot`` or ``codes``), the rest must be numbers.
    ``missing``: ``error`` (default) stops at the first empty/NA cell naming its line and column,
    ``drop`` drops such rows, ``fill`` uses the train split's mean (numeric) or most frequent
    value (categorical); rows without a target are dropped by ``drop`` and ``fill``.
    ``on_error``: ``raise`` (default) stops at the first bad row (ragged, non-numeric or
    infinite cell, label outside ``classes``) naming its line and column; ``skip`` drops bad
    rows, warns once and counts them in ``describe()["skipped"]``.

    >>> # data: {name: csv, path: penguins.csv, target: species, categorical: [island, sex]}
    """
    check_fractions(val_fraction, test_fraction)
    opts = dict(
        task=task,
        features=features,
        categorical=categorical,
        ignore=ignore,
        encoding=encoding,
        missing=missing,
        on_error=on_error,
        classes=classes,
        delimiter=delimiter,
        val_fraction=val_fraction,
        test_fraction=test_fraction,
        split_seed=split_seed,
        balance=balance,
        class_weights=class_weights,
    )
    return CsvTable(
        path, target, opts, batch_size=batch_size, eval_batch_size=eval_batch_size, seed=seed
    )
