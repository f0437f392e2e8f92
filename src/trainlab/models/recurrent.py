"""Recurrent sequence models: RNN, LSTM, GRU for sequence classification and regression.

Input is either token ids ``(N, T)`` int64 (when ``vocab_size > 0``; id ``pad_idx`` marks right
padding) or features ``(N, T, F)`` float. Variable-length batches are packed
(``pack_padded_sequence``) so padded steps never enter the recurrence: the result for a sequence
is the same whether or not the batch pads it.

Forward contract: ``model(x, lengths=None) -> (N, num_outputs)``; ``lengths`` (N,) int64 gives
the true lengths of feature sequences (token input derives them from ``pad_idx``).
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from trainlab.models.examples import token_batch
from trainlab.models.registry import register_model

__all__ = ["RecurrentNet", "make_rnn"]

Cell = Literal["rnn", "lstm", "gru"]
Pool = Literal["last", "mean", "max"]


def make_rnn(
    cell: Cell, input_size: int, hidden: int, layers: int, bidirectional: bool, dropout: float
) -> nn.RNNBase:
    """A batch-first ``nn.RNN``/``nn.LSTM``/``nn.GRU``; dropout applies between layers only."""
    cls = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}[cell]
    return cls(
        input_size,
        hidden,
        layers,
        batch_first=True,
        bidirectional=bidirectional,
        dropout=dropout if layers > 1 else 0.0,
    )


class RecurrentNet(nn.Module):
    """[embedding] → RNN/LSTM/GRU → last hidden state or pooled outputs → dropout → linear."""

    def __init__(
        self,
        cell: Cell,
        vocab_size: int,
        embed_dim: int,
        input_size: int,
        hidden: int,
        layers: int,
        bidirectional: bool,
        dropout: float,
        pool: Pool,
        num_outputs: int,
        pad_idx: int,
        seq_len: int,
    ) -> None:
        super().__init__()
        self.vocab_size, self.input_size, self.pad_idx, self.pool = (
            vocab_size,
            input_size,
            pad_idx,
            pool,
        )
        self.seq_len = seq_len  # only for example_input
        self.embed = (
            nn.Embedding(vocab_size, embed_dim, padding_idx=pad_idx) if vocab_size else None
        )
        self.rnn = make_rnn(
            cell, embed_dim if vocab_size else input_size, hidden, layers, bidirectional, dropout
        )
        out = hidden * (2 if bidirectional else 1)
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(out, num_outputs))

    def encode(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """Sequence summary (N, hidden · directions)."""
        if self.embed is not None:
            if lengths is None:  # right padding: the length is the number of non-pad tokens
                lengths = (x != self.pad_idx).sum(1).clamp(min=1)
            x = self.embed(x)  # (N, T) → (N, T, E)
        n, t = x.shape[:2]
        if lengths is None:
            lengths = torch.full((n,), t, dtype=torch.long)
        packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
        out, h = self.rnn(packed)
        if self.pool == "last":
            h_n = h[0] if isinstance(h, tuple) else h  # LSTM returns (h_n, c_n)
            # h_n: (layers · dirs, N, H) holds each sequence's state at its *true* last step;
            # take the top layer's forward (and backward) states.
            dirs = 2 if self.rnn.bidirectional else 1
            return torch.cat(list(h_n[-dirs:]), dim=-1)
        y, _ = pad_packed_sequence(out, batch_first=True, total_length=t)  # (N, T, H · dirs)
        valid = (torch.arange(t, device=y.device)[None, :] < lengths.to(y.device)[:, None])[
            ..., None
        ]
        if self.pool == "mean":
            return (y * valid).sum(1) / valid.sum(1)
        return y.masked_fill(~valid, float("-inf")).amax(1)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        # x: (N, T) tokens or (N, T, F) features → (N, num_outputs)
        return self.head(self.encode(x, lengths))

    def example_input(self, batch: int = 2) -> tuple[torch.Tensor, ...]:
        if self.vocab_size:
            return (token_batch(batch, self.seq_len, self.vocab_size),)
        return (torch.randn(batch, self.seq_len, self.input_size),)


def _register(cell: Cell) -> None:
    def classifier(
        *,
        vocab_size: int = 1000,
        embed_dim: int = 64,
        input_size: int = 1,
        hidden: int = 128,
        layers: int = 1,
        bidirectional: bool = False,
        dropout: float = 0.0,
        pool: Pool = "last",
        num_classes: int = 2,
        pad_idx: int = 0,
        seq_len: int = 32,
    ) -> nn.Module:
        return RecurrentNet(
            cell,
            vocab_size,
            embed_dim,
            input_size,
            hidden,
            layers,
            bidirectional,
            dropout,
            pool,
            num_classes,
            pad_idx,
            seq_len,
        )

    def regressor(
        *,
        input_size: int = 1,
        vocab_size: int = 0,
        embed_dim: int = 64,
        hidden: int = 64,
        layers: int = 1,
        bidirectional: bool = False,
        dropout: float = 0.0,
        pool: Pool = "last",
        num_outputs: int = 1,
        pad_idx: int = 0,
        seq_len: int = 32,
    ) -> nn.Module:
        return RecurrentNet(
            cell,
            vocab_size,
            embed_dim,
            input_size,
            hidden,
            layers,
            bidirectional,
            dropout,
            pool,
            num_outputs,
            pad_idx,
            seq_len,
        )

    upper = cell.upper()
    classifier.__name__, regressor.__name__ = cell, f"{cell}_regressor"
    classifier.__doc__ = (
        f"{upper} sequence classifier: tokens (N, T) → logits (N, num_classes); "
        "``vocab_size=0`` for float features (N, T, input_size)."
    )
    regressor.__doc__ = (
        f"{upper} regressor / forecaster: features (N, T, input_size) → (N, num_outputs), e.g. "
        "the next ``num_outputs`` values of a series."
    )
    register_model(cell)(classifier)
    register_model(f"{cell}_regressor")(regressor)


for _cell in ("rnn", "lstm", "gru"):
    _register(_cell)  # type: ignore[arg-type]
