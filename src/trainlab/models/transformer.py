"""Transformers (Vaswani et al., 2017): encoder–decoder, encoder-only classifier, decoder-only LM.

Blocks are pre-norm (LayerNorm before each sub-layer, as GPT-2 and ViT) because it trains
stably without warm-up tricks; the original paper normalised after the residual addition.
Masks are boolean, True = may attend (see :mod:`trainlab.models.layers.attention`).

Forward contracts
-----------------
- ``transformer_classifier``: ``model(tokens (N, T)) -> logits (N, num_classes)``; id
  ``pad_idx`` marks padding, ignored by attention and pooling.
- ``transformer_lm``: ``model(tokens (N, T)) -> logits (N, T, vocab)``, position t predicting
  token t + 1 from tokens ≤ t only; ``model.generate(prompt, max_new_tokens)`` samples.
- ``transformer``: ``model(src (N, S), tgt_in (N, T)) -> logits (N, T, tgt_vocab)`` where
  ``tgt_in`` is the target shifted right (starting with BOS); ``model.generate(src, bos)``
  decodes greedily.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from trainlab.models.examples import token_batch
from trainlab.models.layers import (
    MultiHeadAttention,
    SinusoidalPositionalEncoding,
    causal_mask,
    padding_mask,
)
from trainlab.models.layers.checkpointing import checkpointable, run_blocks
from trainlab.models.registry import register_model

__all__ = ["TransformerBlock", "TransformerClassifier", "TransformerLM", "Transformer"]


class TransformerBlock(nn.Module):
    """x + SelfAttn(LN(x)) [+ CrossAttn(LN(x), memory)] + MLP(LN(x)); shapes (N, T, D) → same."""

    def __init__(self, dim: int, heads: int, mlp_dim: int, dropout: float, cross: bool = False):
        super().__init__()
        self.ln_1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = MultiHeadAttention(dim, heads, dropout)
        self.ln_x = nn.LayerNorm(dim, eps=1e-6) if cross else None
        self.cross = MultiHeadAttention(dim, heads, dropout) if cross else None
        self.ln_2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = nn.Sequential(
            nn.Linear(dim, mlp_dim), nn.GELU(), nn.Dropout(dropout), nn.Linear(mlp_dim, dim)
        )
        self.drop = nn.Dropout(dropout)

    def forward(
        self,
        x: torch.Tensor,
        mask: torch.Tensor | None = None,
        memory: torch.Tensor | None = None,
        memory_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        x = x + self.drop(self.attn(self.ln_1(x), mask=mask))
        if self.cross is not None and self.ln_x is not None:
            if memory is None:
                raise ValueError("a decoder block needs the encoder output (memory)")
            x = x + self.drop(self.cross(self.ln_x(x), memory, mask=memory_mask))
        return x + self.drop(self.mlp(self.ln_2(x)))


def _blocks(depth: int, dim: int, heads: int, mlp_dim: int, dropout: float, cross: bool = False):
    return nn.ModuleList(
        TransformerBlock(dim, heads, mlp_dim, dropout, cross) for _ in range(depth)
    )


@checkpointable
class TransformerClassifier(nn.Module):
    """Token embedding + sinusoidal positions → encoder blocks → LN → mean over real tokens → FC."""

    def __init__(
        self,
        vocab_size: int,
        num_classes: int,
        dim: int,
        depth: int,
        heads: int,
        mlp_dim: int,
        dropout: float,
        max_len: int,
        pad_idx: int,
        seq_len: int,
    ) -> None:
        super().__init__()
        self.vocab_size, self.pad_idx, self.seq_len = vocab_size, pad_idx, seq_len
        self.embed = nn.Embedding(vocab_size, dim, padding_idx=pad_idx)
        self.pos = SinusoidalPositionalEncoding(dim, max_len, dropout)
        self.blocks = _blocks(depth, dim, heads, mlp_dim, dropout)
        self.ln = nn.LayerNorm(dim, eps=1e-6)
        self.head = nn.Linear(dim, num_classes)
        self.grad_checkpointing = False  # recompute each block's activations in backward

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        mask = padding_mask(tokens, self.pad_idx)  # (N, 1, 1, T): pads are never keys
        x = self.pos(self.embed(tokens))  # (N, T) → (N, T, D)
        x = self.ln(run_blocks(self.blocks, x, self.grad_checkpointing, mask))
        real = (tokens != self.pad_idx).unsqueeze(-1)  # (N, T, 1)
        pooled = (x * real).sum(1) / real.sum(1).clamp(min=1)  # mean over real tokens: (N, D)
        return self.head(pooled)

    def example_input(self, batch: int = 2) -> tuple[torch.Tensor, ...]:
        return (token_batch(batch, self.seq_len, self.vocab_size),)


@checkpointable
class TransformerLM(nn.Module):
    """Decoder-only (GPT-style) language model with learned positions and tied in/out embeddings."""

    def __init__(
        self,
        vocab_size: int,
        dim: int,
        depth: int,
        heads: int,
        mlp_dim: int,
        dropout: float,
        context: int,
        tie_weights: bool,
    ) -> None:
        super().__init__()
        self.vocab_size, self.context = vocab_size, context
        self.embed = nn.Embedding(vocab_size, dim)
        self.pos = nn.Parameter(torch.zeros(1, context, dim))
        nn.init.normal_(self.pos, std=0.02)
        self.drop = nn.Dropout(dropout)
        self.blocks = _blocks(depth, dim, heads, mlp_dim, dropout)
        self.ln = nn.LayerNorm(dim, eps=1e-6)
        self.head = nn.Linear(dim, vocab_size, bias=False)
        self.grad_checkpointing = False  # recompute each block's activations in backward
        if tie_weights:  # one (V, D) matrix both embeds and un-embeds: fewer parameters
            self.head.weight = self.embed.weight

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        t = tokens.shape[1]
        if t > self.context:
            raise ValueError(f"sequence length {t} exceeds the context of {self.context} tokens")
        x = self.drop(self.embed(tokens) + self.pos[:, :t])  # (N, T, D)
        mask = causal_mask(t, tokens.device)  # (T, T): position t attends to 0..t only
        x = run_blocks(self.blocks, x, self.grad_checkpointing, mask)
        return self.head(self.ln(x))  # (N, T, V)

    @torch.no_grad()
    def generate(
        self,
        prompt: torch.Tensor,
        max_new_tokens: int,
        temperature: float = 1.0,
        top_k: int | None = None,
        vocab: int | None = None,
    ) -> torch.Tensor:
        """Extend ``prompt`` (N, T) by sampling; returns (N, T + max_new_tokens).

        ``temperature`` → 0 approaches greedy decoding; ``top_k`` keeps the k likeliest tokens;
        ``vocab``: only ids below it are drawn (the table may be larger than the data's
        vocabulary, whose decoder knows no higher id).
        """
        tokens = prompt
        for _ in range(max_new_tokens):
            logits = self(tokens[:, -self.context :])[:, -1] / max(temperature, 1e-8)  # (N, V)
            if vocab is not None and vocab < logits.shape[-1]:
                logits[:, vocab:] = float("-inf")  # ids the data never had: never drawn
            if top_k is not None:
                kth = logits.topk(min(top_k, logits.shape[-1])).values[:, -1:]
                logits = logits.masked_fill(logits < kth, float("-inf"))
            nxt = torch.multinomial(F.softmax(logits, dim=-1), 1)  # (N, 1)
            tokens = torch.cat([tokens, nxt], dim=1)
        return tokens

    def example_input(self, batch: int = 2) -> tuple[torch.Tensor, ...]:
        return (token_batch(batch, min(16, self.context), self.vocab_size, low=0),)


class Transformer(nn.Module):
    """Encoder–decoder Transformer: encoder over src, causal decoder with cross-attention."""

    def __init__(
        self,
        src_vocab: int,
        tgt_vocab: int,
        dim: int,
        depth: int,
        heads: int,
        mlp_dim: int,
        dropout: float,
        max_len: int,
        pad_idx: int,
    ) -> None:
        super().__init__()
        self.src_vocab, self.tgt_vocab, self.pad_idx = src_vocab, tgt_vocab, pad_idx
        self.src_embed = nn.Embedding(src_vocab, dim, padding_idx=pad_idx)
        self.tgt_embed = nn.Embedding(tgt_vocab, dim, padding_idx=pad_idx)
        self.pos = SinusoidalPositionalEncoding(dim, max_len, dropout)
        self.encoder = _blocks(depth, dim, heads, mlp_dim, dropout)
        self.decoder = _blocks(depth, dim, heads, mlp_dim, dropout, cross=True)
        self.ln_enc = nn.LayerNorm(dim, eps=1e-6)
        self.ln_dec = nn.LayerNorm(dim, eps=1e-6)
        self.head = nn.Linear(dim, tgt_vocab)

    def encode(self, src: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(memory (N, S, D), src key mask (N, 1, 1, S))."""
        mask = padding_mask(src, self.pad_idx)
        x = self.pos(self.src_embed(src))
        for block in self.encoder:
            x = block(x, mask)
        return self.ln_enc(x), mask

    def decode(self, tgt_in: torch.Tensor, memory: torch.Tensor, src_mask: torch.Tensor):
        """Logits (N, T, tgt_vocab); position t sees tgt_in[:, :t+1] and all real src tokens."""
        mask = causal_mask(tgt_in.shape[1], tgt_in.device)
        y = self.pos(self.tgt_embed(tgt_in))
        for block in self.decoder:
            y = block(y, mask, memory, src_mask)
        return self.head(self.ln_dec(y))

    def forward(self, src: torch.Tensor, tgt_in: torch.Tensor) -> torch.Tensor:
        memory, src_mask = self.encode(src)
        return self.decode(tgt_in, memory, src_mask)

    @torch.no_grad()
    def generate(self, src: torch.Tensor, bos_idx: int, max_len: int) -> torch.Tensor:
        """Greedy decoding: (N, S) → (N, max_len) target ids, BOS excluded."""
        memory, src_mask = self.encode(src)
        out = torch.full((src.shape[0], 1), bos_idx, dtype=torch.long, device=src.device)
        for _ in range(max_len):
            nxt = self.decode(out, memory, src_mask)[:, -1].argmax(-1, keepdim=True)
            out = torch.cat([out, nxt], dim=1)
        return out[:, 1:]

    def example_input(self, batch: int = 2) -> tuple[torch.Tensor, ...]:
        return token_batch(batch, 7, self.src_vocab), token_batch(batch, 5, self.tgt_vocab)


@register_model("transformer_classifier")
def transformer_classifier(
    *,
    vocab_size: int = 1000,
    num_classes: int = 2,
    dim: int = 128,
    depth: int = 2,
    heads: int = 4,
    mlp_dim: int = 256,
    dropout: float = 0.1,
    max_len: int = 512,
    pad_idx: int = 0,
    seq_len: int = 32,
) -> nn.Module:
    """Encoder-only Transformer classifier: tokens (N, T) → logits (N, num_classes)."""
    return TransformerClassifier(
        vocab_size, num_classes, dim, depth, heads, mlp_dim, dropout, max_len, pad_idx, seq_len
    )


@register_model("transformer_lm")
def transformer_lm(
    *,
    vocab_size: int = 256,
    dim: int = 128,
    depth: int = 4,
    heads: int = 4,
    mlp_dim: int = 512,
    dropout: float = 0.1,
    context: int = 128,
    tie_weights: bool = True,
) -> nn.Module:
    """Decoder-only character/word LM: tokens (N, T) → next-token logits (N, T, vocab)."""
    return TransformerLM(vocab_size, dim, depth, heads, mlp_dim, dropout, context, tie_weights)


@register_model("transformer")
def transformer(
    *,
    src_vocab: int = 1000,
    tgt_vocab: int = 1000,
    dim: int = 128,
    depth: int = 2,
    heads: int = 4,
    mlp_dim: int = 256,
    dropout: float = 0.1,
    max_len: int = 512,
    pad_idx: int = 0,
) -> nn.Module:
    """Encoder–decoder Transformer: (src (N, S), tgt_in (N, T)) → logits (N, T, tgt_vocab)."""
    return Transformer(src_vocab, tgt_vocab, dim, depth, heads, mlp_dim, dropout, max_len, pad_idx)
