"""Attention maps of sequence-to-sequence models, saved for the report (``attention.json``).

For ``seq2seq`` (RNN encoder–decoder with ``bahdanau`` or ``dot`` attention) and ``transformer``
(encoder–decoder): forward hooks on the attention modules catch their inputs during one
teacher-forced forward pass of a few test examples; the weights are recomputed from those
inputs with the module's own parameters (``F.scaled_dot_product_attention`` never returns its
weights). The model code is untouched and the hooks are removed afterwards.

A map is (target positions T, source positions S): row t is how decoder step t (predicting
target token t) spreads its attention over the source tokens, so each row sums to 1. The
Transformer has one map per decoder layer (cross-attention, averaged over the heads).
"""

from __future__ import annotations

import json
import math
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "AttentionMap",
    "FILENAME",
    "attention_maps",
    "mha_weights",
    "additive_weights",
    "write_attention_maps",
    "read_attention_maps",
]

FILENAME = "attention.json"


@dataclass
class AttentionMap:
    """``weights`` (N, T, S) of the attention module ``name``, rows summing to 1."""

    name: str
    weights: torch.Tensor


def mha_weights(
    mha: nn.Module, q: torch.Tensor, kv: torch.Tensor | None, mask: torch.Tensor | None
) -> torch.Tensor:
    """Attention weights (N, heads, T, S) of a :class:`MultiHeadAttention` for these inputs:
    ``softmax(Q Kᵀ / sqrt(d_head))`` with disallowed (False) positions at 0."""
    d = q.shape[-1]
    w, b = mha.qkv.weight, mha.qkv.bias
    kv = q if kv is None else kv
    query = F.linear(q, w[:d], b[:d])
    key = F.linear(kv, w[d : 2 * d], b[d : 2 * d])
    h = mha.heads
    query = query.view(q.shape[0], q.shape[1], h, d // h).transpose(1, 2)  # (N, h, T, d_h)
    key = key.view(kv.shape[0], kv.shape[1], h, d // h).transpose(1, 2)  # (N, h, S, d_h)
    scores = query @ key.transpose(-1, -2) / math.sqrt(d // h)  # (N, h, T, S)
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    return scores.float().softmax(-1)


def additive_weights(
    attn: nn.Module, q: torch.Tensor, k: torch.Tensor, mask: torch.Tensor
) -> torch.Tensor:
    """Weights (N, S) of the seq2seq ``Attention`` module for query q (N, H), keys k (N, S, H)."""
    if attn.kind == "bahdanau":
        scores = attn.v(torch.tanh(attn.w_q(q)[:, None] + attn.w_k(k))).squeeze(-1)
    else:
        scores = (k @ q.unsqueeze(-1)).squeeze(-1) / math.sqrt(q.shape[-1])
    return scores.masked_fill(~mask, float("-inf")).float().softmax(-1)


def _hooks(model: nn.Module) -> tuple[list[tuple[str, nn.Module]], str] | None:
    """The attention modules to watch and the model kind, or None for other models."""
    attn = getattr(model, "attention", None)
    if attn is not None and getattr(attn, "kind", "none") in ("bahdanau", "dot"):
        return [(f"attention ({attn.kind})", attn)], "rnn"
    decoder = getattr(model, "decoder", None)
    if isinstance(decoder, nn.ModuleList) and all(
        getattr(b, "cross", None) is not None for b in decoder
    ):
        n = len(decoder)
        names = [f"decoder layer {i + 1}/{n}, cross-attention" for i in range(n)]
        return [(name, b.cross) for name, b in zip(names, decoder)], "transformer"
    return None


@torch.no_grad()
def attention_maps(model: nn.Module, src: torch.Tensor, tgt_in: torch.Tensor) -> list[AttentionMap]:
    """Every attention map of one teacher-forced forward pass ``model(src, tgt_in)``.

    Empty for models without encoder–decoder attention. The model is run in eval mode and left
    in the mode it was in.

    >>> from trainlab.models import create_model
    >>> m = create_model("seq2seq", src_vocab=9, tgt_vocab=9, hidden=16, embed_dim=8)
    >>> maps = attention_maps(m, torch.randint(2, 9, (2, 6)), torch.randint(1, 9, (2, 4)))
    >>> [(a.name, tuple(a.weights.shape)) for a in maps]
    [('attention (bahdanau)', (2, 4, 6))]
    """
    found = _hooks(model)
    if found is None:
        return []
    modules, kind = found
    caught: dict[str, list[torch.Tensor]] = {name: [] for name, _ in modules}

    def catch(name: str, module: nn.Module):
        def hook(_m: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any], _out: Any) -> None:
            if kind == "rnn":  # one call per decoder step: weights (N, S)
                caught[name].append(additive_weights(module, *args[:3]))
            else:
                kv = args[1] if len(args) > 1 else kwargs.get("kv")
                w = mha_weights(module, args[0], kv, kwargs.get("mask"))
                caught[name].append(w.mean(1))  # average of the heads: (N, T, S)

        return hook

    handles = [m.register_forward_hook(catch(n, m), with_kwargs=True) for n, m in modules]
    was_training = model.training
    model.eval()
    try:
        model(src, tgt_in)
    finally:
        model.train(was_training)
        for h in handles:
            h.remove()
    out = []
    for name, ws in caught.items():
        weights = torch.stack(ws, 1) if kind == "rnn" else ws[-1]  # (N, T, S)
        out.append(AttentionMap(name, weights.float().cpu()))
    return out


def write_attention_maps(
    model: nn.Module, data: Any, task: Any, run_dir: str | Path, n: int = 4
) -> Path | None:
    """Save the attention maps of ``n`` test (else validation) examples as ``attention.json``;
    None (and nothing written) for models without encoder–decoder attention or without data.

    Each example keeps its real tokens only: source ids up to padding, target ids up to padding.
    """
    from trainlab.tasks.common import bare_model, shift_right

    model = bare_model(model)
    if _hooks(model) is None:
        return None
    pad, bos = getattr(task, "pad_idx", 0), getattr(task, "bos_idx", 1)
    split = next((s for s in ("test", "val") if data.sizes.get(s, 0) > 0), None)
    if split is None:
        return None
    try:
        src, y = next(iter(data.loader(split).iter_epoch(0)))
        src, y = src[:n], y[:n]
        maps = attention_maps(model, src, shift_right(y, bos))
    except (RuntimeError, ValueError, TypeError, StopIteration) as e:  # a figure, not the run
        warnings.warn(f"attention maps not saved: {e}", stacklevel=2)
        return None
    examples = []
    for i in range(len(src)):
        s_len, t_len = int((src[i] != pad).sum()), int((y[i] != pad).sum())
        examples.append({
            "src": src[i, :s_len].tolist(), "tgt": y[i, :t_len].tolist(),
            "maps": {m.name: m.weights[i, :t_len, :s_len].tolist() for m in maps},
        })  # fmt: skip
    path = Path(run_dir) / FILENAME
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps({"split": split, "examples": examples}) + "\n")
    os.replace(tmp, path)
    return path


def read_attention_maps(run_dir: str | Path) -> dict[str, Any] | None:
    """The run's ``attention.json``, or None when it has none (or an unreadable one)."""
    path = Path(run_dir) / FILENAME
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None
