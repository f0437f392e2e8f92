"""Beam-search decoding for the seq2seq and language-model tasks.

Greedy decoding keeps the single likeliest token at each step; beam search keeps the ``beam_size``
likeliest *prefixes* (by summed log-probability), so a token that looks worse now can win when
what follows it is likelier. With ``beam_size=1`` it is greedy decoding, token for token.

When an end token (``eos_idx``) is given, a hypothesis that emits it is finished: it keeps its
score and is padded from then on. Finished and unfinished hypotheses of different lengths are
compared by score / lp(length) with GNMT's length penalty lp(L) = ((5 + L) / 6)^α (Wu et al.,
2016): α = 0 compares raw log-probabilities (favouring short outputs), α ≈ 0.6-1 evens that out.

The search calls ``next_logprobs(prefix) -> (M, V)`` for all M = N·K live rows at once; the
model-specific part is only that function (:func:`seq2seq_beam`, :func:`lm_beam`).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from trainlab.errors import ConfigError

__all__ = ["beam_search", "check_beam_options", "lm_beam", "seq2seq_beam"]

NextLogProbs = Callable[[torch.Tensor], torch.Tensor]


def check_beam_options(decode: str, beam_size: int, length_penalty: float, where: str) -> None:
    """Clear errors for ``decode``/``beam_size``/``length_penalty`` (``where``: the key prefix)."""
    if decode not in ("greedy", "beam"):
        raise ConfigError(f"{where}.decode: 'greedy' or 'beam' (got '{decode}')")
    if beam_size < 1:
        raise ConfigError(f"{where}.beam_size: at least 1 (got {beam_size})")
    if length_penalty < 0:
        raise ConfigError(f"{where}.length_penalty: ≥ 0 (got {length_penalty})")


def _penalty(lengths: torch.Tensor, alpha: float) -> torch.Tensor:
    return ((5.0 + lengths.float()) / 6.0) ** alpha  # GNMT; 1 everywhere when alpha == 0


def beam_search(
    next_logprobs: NextLogProbs,
    start: torch.Tensor,
    steps: int,
    beam_size: int,
    length_penalty: float = 0.0,
    eos_idx: int | None = None,
    pad_idx: int = 0,
) -> torch.Tensor:
    """Extend each row of ``start`` (N, T0) by ``steps`` tokens; returns (N, T0 + steps).

    ``next_logprobs`` maps prefixes (M, T) to next-token log-probabilities (M, V); rows come in
    groups of ``beam_size`` per sample. After ``eos_idx`` a hypothesis continues with ``pad_idx``.

    >>> table = torch.log_softmax(torch.tensor([[0.0, 2.0, 1.0]]), -1)   # the same every step
    >>> beam_search(lambda p: table.expand(len(p), 3), torch.zeros(1, 1, dtype=torch.long), 2, 2)
    tensor([[0, 1, 1]])
    """
    n, k = start.shape[0], beam_size
    prefix = start.repeat_interleave(k, dim=0)  # (N·K, T0): K copies of each sample
    # Only the first copy is live at the start, or K identical beams would fill the beam.
    scores = torch.full((n, k), float("-inf"), device=start.device)
    scores[:, 0] = 0.0
    lengths = torch.zeros(n, k, dtype=torch.long, device=start.device)
    done = torch.zeros(n, k, dtype=torch.bool, device=start.device)
    for _ in range(steps):
        logp = next_logprobs(prefix).float().view(n, k, -1)  # (N, K, V)
        v = logp.shape[-1]
        if eos_idx is not None:  # a finished hypothesis can only be extended by padding, free
            logp = torch.where(done.unsqueeze(-1), float("-inf"), logp)
            logp[..., pad_idx] = torch.where(done, 0.0, logp[..., pad_idx])
        new_len = lengths + (~done).long()  # (N, K): tokens generated, EOS included
        cand = (scores.unsqueeze(-1) + logp).view(n, k * v)  # (N, K·V) summed log-probs
        norm = cand / _penalty(new_len, length_penalty).repeat_interleave(v, dim=1)
        top = norm.topk(k, dim=1).indices  # (N, K) best extensions by normalised score
        origin, token = top // v, top % v  # which beam each comes from, and its new token
        scores = cand.gather(1, top)
        lengths, done = new_len.gather(1, origin), done.gather(1, origin)
        rows = (origin + torch.arange(n, device=start.device).unsqueeze(1) * k).flatten()
        prefix = torch.cat([prefix[rows], token.reshape(-1, 1)], dim=1)
        if eos_idx is not None:
            done = done | (token == eos_idx)
    best = (scores / _penalty(lengths, length_penalty)).argmax(dim=1)  # (N,)
    return prefix.view(n, k, -1)[torch.arange(n, device=start.device), best]


@torch.no_grad()
def seq2seq_beam(
    model: nn.Module,
    src: torch.Tensor,
    bos_idx: int,
    max_len: int,
    beam_size: int,
    length_penalty: float = 0.0,
    eos_idx: int | None = None,
    pad_idx: int = 0,
) -> torch.Tensor:
    """Beam decoding of an encoder-decoder ``model(src, tgt_in) -> (N, T, V)``; returns
    (N, max_len) target ids, BOS excluded, like the models' greedy ``generate``.

    Models with ``encode``/``decode`` (the Transformer) encode once; others are run on the whole
    prefix at each step (in eval mode a recurrent decoder then reads exactly the given tokens).
    """
    src_k = src.repeat_interleave(beam_size, dim=0)  # (N·K, S)
    if callable(getattr(model, "encode", None)) and callable(getattr(model, "decode", None)):
        memory, src_mask = model.encode(src_k)

        def step(prefix: torch.Tensor) -> torch.Tensor:
            return F.log_softmax(model.decode(prefix, memory, src_mask)[:, -1].float(), dim=-1)
    else:

        def step(prefix: torch.Tensor) -> torch.Tensor:
            return F.log_softmax(model(src_k, prefix)[:, -1].float(), dim=-1)

    start = torch.full((src.shape[0], 1), bos_idx, dtype=torch.long, device=src.device)
    out = beam_search(step, start, max_len, beam_size, length_penalty, eos_idx, pad_idx)
    return out[:, 1:]


@torch.no_grad()
def lm_beam(
    model: nn.Module,
    prompt: torch.Tensor,
    max_new_tokens: int,
    beam_size: int,
    length_penalty: float = 0.0,
    eos_idx: int | None = None,
    pad_idx: int = 0,
    vocab: int | None = None,
) -> torch.Tensor:
    """The likeliest continuation of ``prompt`` (N, T) under a causal LM ``model(tokens) ->
    (N, T, V)`` (its last ``model.context`` tokens, when it has a context limit);
    returns (N, T + max_new_tokens). ``beam_size=1`` is greedy decoding. ``vocab``: only ids
    below it are generated (a model's table may be larger than the data's vocabulary)."""
    context = getattr(model, "context", None)

    def step(prefix: torch.Tensor) -> torch.Tensor:
        window = prefix if context is None else prefix[:, -context:]
        logits = model(window)[:, -1].float()
        if vocab is not None and vocab < logits.shape[-1]:
            logits[:, vocab:] = float("-inf")  # ids the data never had: never chosen
        return F.log_softmax(logits, dim=-1)

    return beam_search(step, prompt, max_new_tokens, beam_size, length_penalty, eos_idx, pad_idx)
