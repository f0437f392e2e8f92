"""Batched augmentation on in-memory image tensors: no per-sample Python work.

Each function takes a whole batch ``x`` of shape (N, C, H, W) (any dtype) and a
``torch.Generator`` and returns a new batch of the same shape; labels are untouched.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field

__all__ = ["Augment", "random_flip", "random_translate", "cutout", "apply_augment"]


class Augment(BaseModel):
    """Recipe options (``data.augment``): which batch augmentations to apply in training."""

    model_config = ConfigDict(extra="forbid")

    flip: bool = False  # horizontal flip with probability 0.5
    translate: int = Field(0, ge=0)  # random shift by up to ±translate pixels, zero fill
    cutout: int = Field(0, ge=0)  # side of a zeroed square at a random place, 0 = off


def random_flip(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    flip = torch.rand(x.shape[0], generator=gen, device=gen.device) < 0.5
    return torch.where(flip.view(-1, 1, 1, 1).to(x.device), x.flip(-1), x)


def random_translate(x: torch.Tensor, t: int, gen: torch.Generator) -> torch.Tensor:
    # Pad by t, then gather a (H, W) window at a random offset per sample: one indexing op.
    n, _, h, w = x.shape
    padded = F.pad(x, (t, t, t, t))
    dx = torch.randint(0, 2 * t + 1, (n,), generator=gen, device=gen.device).to(x.device)
    dy = torch.randint(0, 2 * t + 1, (n,), generator=gen, device=gen.device).to(x.device)
    rows = (dy[:, None] + torch.arange(h, device=x.device))[:, None, :, None]  # (N,1,H,1)
    cols = (dx[:, None] + torch.arange(w, device=x.device))[:, None, None, :]  # (N,1,1,W)
    batch = torch.arange(n, device=x.device)[:, None, None, None]
    chan = torch.arange(x.shape[1], device=x.device)[None, :, None, None]
    return padded[batch, chan, rows, cols]


def cutout(x: torch.Tensor, size: int, gen: torch.Generator) -> torch.Tensor:
    n, _, h, w = x.shape
    cy = torch.randint(0, h, (n,), generator=gen, device=gen.device).to(x.device)
    cx = torch.randint(0, w, (n,), generator=gen, device=gen.device).to(x.device)
    ys = torch.arange(h, device=x.device)[None, :, None]
    xs = torch.arange(w, device=x.device)[None, None, :]
    half = size // 2
    inside = ((ys - cy[:, None, None]).abs() <= half) & ((xs - cx[:, None, None]).abs() <= half)
    return x.masked_fill(inside[:, None], 0)


def apply_augment(x: torch.Tensor, aug: Augment, gen: torch.Generator) -> torch.Tensor:
    """Apply the enabled augmentations in a fixed order: flip, translate, cutout."""
    if aug.flip:
        x = random_flip(x, gen)
    if aug.translate:
        x = random_translate(x, aug.translate, gen)
    if aug.cutout:
        x = cutout(x, aug.cutout, gen)
    return x
