"""Text: character/word language modelling from a plain text file, and text classification
from a CSV/TSV of (text, label).

Token ids are int64 and reach the model unconverted (``raw`` loaders): id 0 is padding, id 1 the
unknown token; the vocabulary is built from the **training split only**, so val/test words never
seen in training become ``<unk>`` exactly as they would in deployment.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any, Literal

import numpy as np
import torch

from trainlab.data.base import register_data
from trainlab.data.fast import FastTensorLoader, memory_loader
from trainlab.data.memory import TensorDataModule
from trainlab.data.splits import check_fractions, holdout_split
from trainlab.data.tabular_io import OnError, read_table, read_text, report_skipped, text_column
from trainlab.errors import DataError

__all__ = ["Vocab", "tokenize", "TextLM", "TextClassification", "text_lm", "text_csv"]

PAD, UNK = 0, 1
_WORD = re.compile(r"\w+|[^\w\s]")  # words and single punctuation marks


def tokenize(text: str, level: Literal["char", "word"], lowercase: bool) -> list[str]:
    if lowercase:
        text = text.lower()
    return list(text) if level == "char" else _WORD.findall(text)


class Vocab:
    """Token ↔ id; ids 0 and 1 are ``<pad>`` and ``<unk>``, the rest by frequency, then text."""

    def __init__(self, tokens: list[str], min_freq: int = 1, max_size: int | None = None) -> None:
        counts = Counter(tokens)
        kept = sorted(
            (t for t, c in counts.items() if c >= min_freq), key=lambda t: (-counts[t], t)
        )
        self.itos = ["<pad>", "<unk>"] + kept[: None if max_size is None else max_size - 2]
        self.stoi = {t: i for i, t in enumerate(self.itos)}

    def __len__(self) -> int:
        return len(self.itos)

    def encode(self, tokens: list[str]) -> list[int]:
        return [self.stoi.get(t, UNK) for t in tokens]

    def decode(self, ids: list[int]) -> list[str]:
        return [self.itos[i] for i in ids]


class TextLM(TensorDataModule):
    """Next-token prediction: ``x`` (N, seq_len) ids, ``y`` = ``x`` shifted by one token."""

    def __init__(self, path: str, opts: dict[str, Any], **kw: object) -> None:
        super().__init__(normalize=False, **kw)  # type: ignore[arg-type]
        self.path, self.opts = path, opts
        self.vocab: Vocab | None = None

    def load(self) -> None:
        text = read_text(self.path)
        tokens = tokenize(text, self.opts["level"], self.opts["lowercase"])
        if not tokens:
            raise DataError(f"{self.path}: empty text file (no tokens)")
        # Contiguous split (train | val | test): shuffled blocks would leak neighbouring text.
        n = len(tokens)
        n_val, n_test = int(n * self.opts["val_fraction"]), int(n * self.opts["test_fraction"])
        cuts = {
            "train": (0, n - n_val - n_test),
            "val": (n - n_val - n_test, n - n_test),
            "test": (n - n_test, n),
        }
        self.vocab = Vocab(
            tokens[: cuts["train"][1]], self.opts["min_freq"], self.opts["max_vocab"]
        )
        self.num_classes = len(self.vocab)
        for split, (a, b) in cuts.items():
            self.splits[split] = self._blocks(self.vocab.encode(tokens[a:b]), split)

    def _blocks(self, ids: list[int], split: str) -> tuple[torch.Tensor, torch.Tensor]:
        L = self.opts["seq_len"]
        n_blocks = (len(ids) - 1) // L  # each block needs L inputs + 1 next token
        if n_blocks < 1:
            fix = "a larger " + f"{split}_fraction" if split != "train" else "smaller fractions"
            raise DataError(
                f"{self.path}: the {split} split has {len(ids)} tokens, fewer than seq_len+1 = "
                f"{L + 1}; use a longer text, a smaller seq_len or {fix}"
            )
        t = torch.tensor(ids[: n_blocks * L + 1], dtype=torch.int64)
        return t[:-1].view(n_blocks, L), t[1:].view(n_blocks, L)

    def loader(self, split: str) -> FastTensorLoader:
        return memory_loader(self, split, raw=True)

    def describe(self) -> dict[str, Any]:
        return super().describe() | {"vocab_size": self.num_classes, "level": self.opts["level"]}


class TextClassification(TensorDataModule):
    """``x`` (N, max_len) ids padded with 0 (``x != 0`` is the mask), ``y`` class ids."""

    def __init__(self, path: str, opts: dict[str, Any], **kw: object) -> None:
        super().__init__(normalize=False, **kw)  # type: ignore[arg-type]
        self.path, self.opts = path, opts
        self.vocab: Vocab | None = None
        self.classes: list[str] = []
        self.split_indices: dict[str, np.ndarray] = {}
        self.skipped_rows: list[str] = []  # "line N: reason" of rows dropped by on_error: skip

    def load(self) -> None:
        o = self.opts
        table = read_table(self.path, o["delimiter"], o["on_error"])
        texts, labels = text_column(table, o["text_column"]), text_column(table, o["label_column"])
        for i, (t, lab) in enumerate(zip(texts, labels, strict=True)):
            if t is None or lab is None:
                col = o["text_column"] if t is None else o["label_column"]
                table.bad(table.lines[i], f", column '{col}': empty")
        rows = np.flatnonzero(~table.bad_rows())  # on_error: skip drops the recorded rows
        self.skipped_rows = report_skipped(table, len(rows))
        texts = [texts[i] for i in rows]
        labels = [labels[i] for i in rows]
        self.classes = sorted(set(labels))  # type: ignore[arg-type]
        self.num_classes = len(self.classes)
        y = np.array([self.classes.index(v) for v in labels])  # type: ignore[arg-type]
        parts = holdout_split(
            y,
            val_fraction=o["val_fraction"],
            test_fraction=o["test_fraction"],
            seed=o["split_seed"],
            where=table.path,
            class_names=self.classes,
        )
        self.split_indices = {k: rows[v] for k, v in parts.items()}  # rows of the file's table
        toks = [tokenize(t, o["level"], o["lowercase"]) for t in texts]  # type: ignore[arg-type]
        train_toks = [tok for i in parts["train"] for tok in toks[i]]
        self.vocab = Vocab(train_toks, o["min_freq"], o["max_vocab"])
        x = torch.zeros(len(toks), o["max_len"], dtype=torch.int64)  # PAD = 0
        for i, t in enumerate(toks):
            ids = self.vocab.encode(t[: o["max_len"]])  # longer texts are truncated
            x[i, : len(ids)] = torch.tensor(ids, dtype=torch.int64)
        yt = torch.from_numpy(y.astype(np.int64))
        self.splits = {
            k: (x[torch.from_numpy(v)], yt[torch.from_numpy(v)]) for k, v in parts.items()
        }

    def loader(self, split: str) -> FastTensorLoader:
        return memory_loader(self, split, raw=True)

    def describe(self) -> dict[str, Any]:
        return super().describe() | {
            "vocab_size": len(self.vocab or []),
            "classes": self.classes,
            "skipped": len(self.skipped_rows),
            "skipped_rows": self.skipped_rows[:20],
        }


@register_data("text_lm")
def text_lm(
    *,
    path: str,
    level: Literal["char", "word"] = "char",
    seq_len: int = 64,
    lowercase: bool = False,
    min_freq: int = 1,
    max_vocab: int | None = None,
    val_fraction: float = 0.05,
    test_fraction: float = 0.05,
    batch_size: int = 32,
    eval_batch_size: int = 128,
    seed: int = 0,
) -> TextLM:
    """Language modelling on one UTF-8 text file: blocks of ``seq_len`` tokens, the target the
    next token at each position; ``num_classes`` is the vocabulary size."""
    check_fractions(val_fraction, test_fraction)
    opts = dict(
        level=level,
        seq_len=seq_len,
        lowercase=lowercase,
        min_freq=min_freq,
        max_vocab=max_vocab,
        val_fraction=val_fraction,
        test_fraction=test_fraction,
    )
    return TextLM(path, opts, batch_size=batch_size, eval_batch_size=eval_batch_size, seed=seed)


@register_data("text_csv")
def text_csv(
    *,
    path: str,
    text_column: str = "text",
    label_column: str = "label",
    level: Literal["char", "word"] = "word",
    max_len: int = 64,
    lowercase: bool = True,
    min_freq: int = 1,
    max_vocab: int | None = 20_000,
    delimiter: str | None = None,
    on_error: OnError = "raise",
    val_fraction: float = 0.15,
    test_fraction: float = 0.15,
    split_seed: int = 0,
    batch_size: int = 32,
    eval_batch_size: int = 256,
    seed: int = 0,
) -> TextClassification:
    """Text classification from a CSV/TSV with a header: one text and one label column.

    ``on_error: skip`` drops bad rows (ragged, empty text or label) instead of stopping at the
    first, warns once and counts them in ``describe()["skipped"]``.
    """
    check_fractions(val_fraction, test_fraction)
    opts = dict(
        text_column=text_column,
        label_column=label_column,
        level=level,
        max_len=max_len,
        lowercase=lowercase,
        min_freq=min_freq,
        max_vocab=max_vocab,
        delimiter=delimiter,
        on_error=on_error,
        val_fraction=val_fraction,
        test_fraction=test_fraction,
        split_seed=split_seed,
    )
    return TextClassification(
        path, opts, batch_size=batch_size, eval_batch_size=eval_batch_size, seed=seed
    )
