"""RNN encoder–decoder with attention (Sutskever et al., 2014; Bahdanau et al., 2014; Luong 2015).

Forward contract: ``model(src (N, S), tgt_in (N, T)) -> logits (N, T, tgt_vocab)``. ``src`` is
right-padded with ``pad_idx``; ``tgt_in`` is the target shifted right (``[BOS, y1, …, y_{T-1}]``).
Step t reads ``tgt_in[:, t]`` (teacher forcing) — in training, with probability
``1 - teacher_forcing`` per step it reads the model's own previous prediction instead.
``model.generate(src, bos_idx, max_len)`` decodes greedily.

Attention: ``bahdanau`` (additive: vᵀ tanh(W_q q + W_k k)), ``dot`` (scaled q·k) or ``none``
(every step sees the encoder's final state as context, as the 2014 seq2seq did).
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from trainlab.models.examples import token_batch
from trainlab.models.recurrent import make_rnn
from trainlab.models.registry import register_model

__all__ = ["Seq2Seq", "seq2seq"]

AttnKind = Literal["bahdanau", "dot", "none"]


class Attention(nn.Module):
    """Context vector (N, H) from decoder state q (N, H) over encoder outputs k (N, S, H)."""

    def __init__(self, kind: AttnKind, hidden: int) -> None:
        super().__init__()
        self.kind = kind
        if kind == "bahdanau":
            self.w_q = nn.Linear(hidden, hidden, bias=False)
            self.w_k = nn.Linear(hidden, hidden, bias=False)
            self.v = nn.Linear(hidden, 1, bias=False)

    def forward(self, q: torch.Tensor, k: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        if self.kind == "bahdanau":
            scores = self.v(torch.tanh(self.w_q(q)[:, None] + self.w_k(k))).squeeze(-1)  # (N, S)
        else:
            scores = (k @ q.unsqueeze(-1)).squeeze(-1) / math.sqrt(q.shape[-1])  # (N, S)
        weights = scores.masked_fill(~mask, float("-inf")).softmax(-1)  # pads get weight 0
        return (weights.unsqueeze(1) @ k).squeeze(1)  # (N, 1, S) · (N, S, H) → (N, H)


class Seq2Seq(nn.Module):
    def __init__(
        self,
        cell: Literal["lstm", "gru"],
        attention: AttnKind,
        src_vocab: int,
        tgt_vocab: int,
        embed_dim: int,
        hidden: int,
        layers: int,
        dropout: float,
        teacher_forcing: float,
        pad_idx: int,
    ) -> None:
        super().__init__()
        self.src_vocab, self.tgt_vocab, self.pad_idx = src_vocab, tgt_vocab, pad_idx
        self.teacher_forcing = teacher_forcing
        self.src_embed = nn.Embedding(src_vocab, embed_dim, padding_idx=pad_idx)
        self.tgt_embed = nn.Embedding(tgt_vocab, embed_dim, padding_idx=pad_idx)
        self.encoder = make_rnn(cell, embed_dim, hidden, layers, False, dropout)
        # Each decoder step reads [embedding of the previous token; context].
        self.decoder = make_rnn(cell, embed_dim + hidden, hidden, layers, False, dropout)
        self.attention = Attention(attention, hidden)
        self.out = nn.Linear(2 * hidden, tgt_vocab)  # from [decoder output; context]

    def encode(self, src: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, object]:
        """(outputs (N, S, H), mask (N, S) True for real tokens, final state)."""
        mask = src != self.pad_idx
        lengths = mask.sum(1).clamp(min=1).cpu()
        packed = pack_padded_sequence(
            self.src_embed(src), lengths, batch_first=True, enforce_sorted=False
        )
        out, state = self.encoder(packed)  # packing: state is taken at each true last step
        out, _ = pad_packed_sequence(out, batch_first=True, total_length=src.shape[1])
        return out, mask, state

    def _step(
        self,
        y_prev: torch.Tensor,
        state: object,
        enc: torch.Tensor,
        mask: torch.Tensor,
        final: torch.Tensor,
    ) -> tuple[torch.Tensor, object]:
        # y_prev (N,) → logits (N, V) and the new decoder state.
        h = state[0] if isinstance(state, tuple) else state  # (layers, N, H)
        if self.attention.kind == "none":
            context = final
        else:  # query: the top layer's state before this step
            context = self.attention(h[-1], enc, mask)
        x = torch.cat([self.tgt_embed(y_prev), context], dim=-1).unsqueeze(1)  # (N, 1, E + H)
        o, state = self.decoder(x, state)
        return self.out(torch.cat([o.squeeze(1), context], dim=-1)), state

    @staticmethod
    def _top(state: object) -> torch.Tensor:
        h = state[0] if isinstance(state, tuple) else state
        return h[-1]  # type: ignore[index]

    def forward(self, src: torch.Tensor, tgt_in: torch.Tensor) -> torch.Tensor:
        enc, mask, state = self.encode(src)
        final = self._top(state)
        logits: list[torch.Tensor] = []
        y = tgt_in[:, 0]
        for t in range(tgt_in.shape[1]):
            step, state = self._step(y, state, enc, mask, final)
            logits.append(step)
            if t + 1 < tgt_in.shape[1]:
                forced = not self.training or torch.rand(()) < self.teacher_forcing
                y = tgt_in[:, t + 1] if forced else step.argmax(-1)
        return torch.stack(logits, dim=1)  # (N, T, V)

    @torch.no_grad()
    def generate(self, src: torch.Tensor, bos_idx: int, max_len: int) -> torch.Tensor:
        """Greedy decoding: (N, S) → (N, max_len) token ids (BOS excluded)."""
        enc, mask, state = self.encode(src)
        final = self._top(state)
        y = torch.full((src.shape[0],), bos_idx, dtype=torch.long, device=src.device)
        out = []
        for _ in range(max_len):
            step, state = self._step(y, state, enc, mask, final)
            y = step.argmax(-1)
            out.append(y)
        return torch.stack(out, dim=1)

    def example_input(self, batch: int = 2) -> tuple[torch.Tensor, ...]:
        return token_batch(batch, 7, self.src_vocab), token_batch(batch, 5, self.tgt_vocab)


@register_model("seq2seq")
def seq2seq(
    *,
    cell: Literal["lstm", "gru"] = "gru",
    attention: AttnKind = "bahdanau",
    src_vocab: int = 1000,
    tgt_vocab: int = 1000,
    embed_dim: int = 64,
    hidden: int = 128,
    layers: int = 2,
    dropout: float = 0.1,
    teacher_forcing: float = 1.0,
    pad_idx: int = 0,
) -> nn.Module:
    """GRU/LSTM encoder–decoder with attention: (src (N, S), tgt_in (N, T)) → (N, T, tgt_vocab)."""
    return Seq2Seq(
        cell,
        attention,
        src_vocab,
        tgt_vocab,
        embed_dim,
        hidden,
        layers,
        dropout,
        teacher_forcing,
        pad_idx,
    )
