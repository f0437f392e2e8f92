"""Sequences: sliding windows over CSV time series, and synthetic tasks for RNNs and seq2seq.

``csv_windows``: ``x`` (N, window, F) float, ``y`` (N, horizon, T) float, the next ``horizon``
rows of the target columns. Splits are chronological (train | val | test, no window crosses a
boundary) and every column is standardised with statistics of the training rows only.

``seq_task`` (no files):

=========  ===========================  ==========================  ====================
task       x                            y                           kind
=========  ===========================  ==========================  ====================
copy       (N, L) ids 2..vocab-1        (N, L) the same ids         classification/step
reverse    (N, L)                       (N, L) reversed             classification/step
sort       (N, L)                       (N, L) sorted ascending     classification/step
adding     (N, L, 2) value, marker      (N,) sum of the 2 marked    regression
sine       (N, L, 1) noisy sine         (N,) the next clean value   regression
=========  ===========================  ==========================  ====================
"""

from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np
import torch

from trainlab.data.base import register_data
from trainlab.data.fast import FastTensorLoader, memory_loader
from trainlab.data.memory import TensorDataModule
from trainlab.data.splits import check_fractions
from trainlab.data.tabular_io import numeric_column, read_table
from trainlab.errors import ConfigError, DataError

__all__ = ["CsvWindows", "SequenceTask", "csv_windows", "seq_task", "make_sequence_task"]


class CsvWindows(TensorDataModule):
    """Forecasting windows over numeric CSV columns (rows in time order)."""

    def __init__(self, path: str, opts: dict[str, Any], **kw: object) -> None:
        super().__init__(normalize=False, **kw)  # type: ignore[arg-type]
        self.path, self.opts = path, opts
        self.column_mean: list[float] = []
        self.column_std: list[float] = []

    def load(self) -> None:
        o = self.opts
        table = read_table(self.path, o["delimiter"])
        cols = list(dict.fromkeys(o["columns"] + (o["targets"] or [])))
        data = np.stack([numeric_column(table, c) for c in cols], axis=1)  # (T, F) time × column
        miss = np.argwhere(np.isnan(data))
        if len(miss):
            r, c = miss[0]
            raise DataError(f"{table.path}: line {table.lines[r]}, column '{cols[c]}': missing")
        n = len(data)
        n_val, n_test = int(n * o["val_fraction"]), int(n * o["test_fraction"])
        bounds = {
            "train": (0, n - n_val - n_test),
            "val": (n - n_val - n_test, n - n_test),
            "test": (n - n_test, n),
        }
        train = data[: bounds["train"][1]]
        mean, std = train.mean(0), train.std(0)
        std[std == 0] = 1.0
        self.column_mean, self.column_std = mean.tolist(), std.tolist()  # to undo the scaling
        z = torch.from_numpy(((data - mean) / std).astype(np.float32))
        xi = [cols.index(c) for c in o["columns"]]
        ti = [cols.index(c) for c in (o["targets"] or o["columns"])]
        for split, (a, b) in bounds.items():
            self.splits[split] = self._windows(z[a:b], xi, ti, split)

    def _windows(
        self, z: torch.Tensor, xi: list[int], ti: list[int], split: str
    ) -> tuple[torch.Tensor, torch.Tensor]:
        w, h, s = self.opts["window"], self.opts["horizon"], self.opts["stride"]
        count = (len(z) - w - h) // s + 1
        if count < 1:
            raise DataError(
                f"{self.path}: the {split} split has {len(z)} rows, fewer than window + horizon ="
                f" {w + h}; use a longer series, a shorter window or a larger {split}_fraction"
            )
        starts = torch.arange(count) * s
        steps = torch.arange(w + h)
        win = z[starts[:, None] + steps]  # (N, w+h, F) gathered once
        return win[:, :w, xi].contiguous(), win[:, w:, ti].contiguous()

    def loader(self, split: str) -> FastTensorLoader:
        return memory_loader(self, split)

    def describe(self) -> dict[str, Any]:
        return super().describe() | {"column_mean": self.column_mean, "column_std": self.column_std}


def make_sequence_task(
    task: str, n: int, seq_len: int, vocab: int, noise: float, gen: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` samples of one synthetic task (see the module table)."""
    if task in ("copy", "reverse", "sort"):
        x = torch.randint(2, vocab, (n, seq_len), generator=gen)  # 0 pad, 1 reserved (start)
        y = {"copy": x, "reverse": x.flip(1), "sort": x.sort(1).values}[task]
        return x, y.clone()
    if task == "adding":
        values = torch.rand(n, seq_len, generator=gen)
        # Two distinct marked positions per sequence: argsort of noise picks them uniformly.
        marks = torch.rand(n, seq_len, generator=gen).argsort(1)[:, :2]
        marker = torch.zeros(n, seq_len).scatter_(1, marks, 1.0)
        return torch.stack([values, marker], -1), (values * marker).sum(1)
    phase = torch.rand(n, 1, generator=gen) * 2 * math.pi
    freq = 0.1 + 0.2 * torch.rand(n, 1, generator=gen)  # radians per step
    t = torch.arange(seq_len + 1)
    clean = torch.sin(phase + freq * t)  # (n, L+1)
    x = clean[:, :seq_len] + noise * torch.randn(n, seq_len, generator=gen)
    return x.unsqueeze(-1), clean[:, seq_len]


class SequenceTask(TensorDataModule):
    """One synthetic sequence task; token tasks yield int64 ``x`` (``raw`` loader)."""

    def __init__(
        self, task: str, sizes: tuple[int, int, int], opts: dict[str, Any], **kw: object
    ) -> None:
        super().__init__(normalize=False, **kw)  # type: ignore[arg-type]
        self.task, self.n, self.opts = task, sizes, opts
        self.tokens = task in ("copy", "reverse", "sort")
        self.num_classes = opts["vocab"] if self.tokens else None

    def load(self) -> None:
        gen = torch.Generator().manual_seed(self.opts["data_seed"])
        for split, n in zip(("train", "val", "test"), self.n, strict=True):
            self.splits[split] = make_sequence_task(
                self.task, n, self.opts["seq_len"], self.opts["vocab"], self.opts["noise"], gen
            )

    def loader(self, split: str) -> FastTensorLoader:
        return memory_loader(self, split, raw=self.tokens)

    def describe(self) -> dict[str, Any]:
        return super().describe() | {"task": self.task}


@register_data("csv_windows")
def csv_windows(
    *,
    path: str,
    columns: list[str],
    targets: list[str] | None = None,
    window: int = 24,
    horizon: int = 1,
    stride: int = 1,
    delimiter: str | None = None,
    val_fraction: float = 0.15,
    test_fraction: float = 0.15,
    batch_size: int = 64,
    eval_batch_size: int = 512,
    seed: int = 0,
) -> CsvWindows:
    """Forecast the next ``horizon`` rows of ``targets`` (default: ``columns``) from the previous
    ``window`` rows of ``columns``; a regression source (``num_classes`` None)."""
    check_fractions(val_fraction, test_fraction)
    if min(window, horizon, stride) < 1:
        raise ConfigError("data.window, data.horizon, data.stride: must be at least 1")
    opts = dict(
        columns=list(columns),
        targets=targets,
        window=window,
        horizon=horizon,
        stride=stride,
        delimiter=delimiter,
        val_fraction=val_fraction,
        test_fraction=test_fraction,
    )
    return CsvWindows(path, opts, batch_size=batch_size, eval_batch_size=eval_batch_size, seed=seed)


@register_data("seq_task")
def seq_task(
    *,
    task: Literal["copy", "reverse", "sort", "adding", "sine"] = "copy",
    seq_len: int = 10,
    vocab: int = 12,
    noise: float = 0.1,
    n_train: int = 2048,
    n_val: int = 256,
    n_test: int = 256,
    data_seed: int = 0,
    batch_size: int = 64,
    eval_batch_size: int = 256,
    seed: int = 0,
) -> SequenceTask:
    """Synthetic sequence tasks for RNNs and seq2seq; ``vocab`` counts ids 0 (pad) and 1."""
    if vocab < 3 or seq_len < 2:
        raise ConfigError(f"data.vocab ≥ 3 and data.seq_len ≥ 2 needed (got {vocab}, {seq_len})")
    opts = dict(seq_len=seq_len, vocab=vocab, noise=noise, data_seed=data_seed)
    return SequenceTask(
        task,
        (n_train, n_val, n_test),
        opts,
        batch_size=batch_size,
        eval_batch_size=eval_batch_size,
        seed=seed,
    )
