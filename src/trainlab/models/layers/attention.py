"""Multi-head attention and positional encodings shared by the Transformer and ViT families.

Written out (rather than ``nn.MultiheadAttention``) so the shapes are visible; the parameter
layout (one fused q/k/v projection plus an output projection, all with bias) has exactly as many
parameters as PyTorch's, so ViT-B/16 matches torchvision's size.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "MultiHeadAttention",
    "SinusoidalPositionalEncoding",
    "causal_mask",
    "padding_mask",
]


def causal_mask(t: int, device: torch.device | None = None) -> torch.Tensor:
    """(T, T) boolean mask, True where attention is *allowed*: query i sees keys 0..i."""
    return torch.ones(t, t, dtype=torch.bool, device=device).tril()


def padding_mask(tokens: torch.Tensor, pad_idx: int) -> torch.Tensor:
    """(N, 1, 1, S) boolean mask from (N, S) token ids, True for real (non-pad) keys."""
    return (tokens != pad_idx)[:, None, None, :]


class MultiHeadAttention(nn.Module):
    """Scaled dot-product attention with ``heads`` heads (Vaswani et al., 2017).

    ``forward(q, kv=None, mask=None)``: q (N, T, D), kv (N, S, D) or None for self-attention,
    mask broadcastable to (N, heads, T, S), boolean, True = may attend. Returns (N, T, D).
    """

    def __init__(self, dim: int, heads: int, dropout: float = 0.0) -> None:
        super().__init__()
        if dim % heads != 0:
            raise ValueError(f"model width {dim} must be divisible by heads={heads}")
        self.heads = heads
        self.dropout = dropout
        self.qkv = nn.Linear(dim, 3 * dim)  # q, k, v projections fused: (D) → (3D)
        self.out = nn.Linear(dim, dim)

    def _split(self, x: torch.Tensor) -> torch.Tensor:
        # (N, T, D) → (N, heads, T, D / heads)
        n, t, d = x.shape
        return x.view(n, t, self.heads, d // self.heads).transpose(1, 2)

    def forward(
        self, q: torch.Tensor, kv: torch.Tensor | None = None, mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        d = q.shape[-1]
        w, b = self.qkv.weight, self.qkv.bias
        if kv is None:  # self-attention: one matmul for all three projections
            query, key, value = self.qkv(q).split(d, dim=-1)
        else:  # cross-attention: queries from the decoder, keys/values from the encoder
            query = F.linear(q, w[:d], b[:d])
            key, value = F.linear(kv, w[d:], b[d:]).split(d, dim=-1)
        query, key, value = self._split(query), self._split(key), self._split(value)
        # (N, h, T, d_h) · (N, h, S, d_h)ᵀ / sqrt(d_h) → softmax over S → weighted sum of values
        y = F.scaled_dot_product_attention(
            query, key, value, attn_mask=mask, dropout_p=self.dropout if self.training else 0.0
        )
        n, _, t, _ = y.shape
        return self.out(y.transpose(1, 2).reshape(n, t, d))


class SinusoidalPositionalEncoding(nn.Module):
    """Adds fixed sin/cos position codes to (N, T, D) embeddings (no parameters)."""

    def __init__(self, dim: int, max_len: int = 1024, dropout: float = 0.0) -> None:
        super().__init__()
        pos = torch.arange(max_len).unsqueeze(1)  # (L, 1)
        freq = torch.exp(torch.arange(0, dim, 2) * (-math.log(10000.0) / dim))  # (D/2,)
        pe = torch.zeros(max_len, dim)
        pe[:, 0::2] = torch.sin(pos * freq)
        pe[:, 1::2] = torch.cos(pos * freq[: dim // 2])
        self.register_buffer("pe", pe, persistent=False)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1] > self.pe.shape[0]:
            raise ValueError(f"sequence length {x.shape[1]} exceeds max_len {self.pe.shape[0]}")
        return self.drop(x + self.pe[: x.shape[1]])
