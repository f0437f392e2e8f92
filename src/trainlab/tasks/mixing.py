"""Mixup (Zhang et al., 2018) and CutMix (Yun et al., 2019) on whole batches.

Both pair each sample with another of the same batch (a random permutation) and mix inputs
with weight λ ~ Beta(α, α); the loss mixes the two labels' losses with the same λ. Draws come
from torch's global RNG, which checkpoints save, so resumed runs mix identically.
"""

from __future__ import annotations

import torch

__all__ = ["mix_batch"]


def mix_batch(
    x: torch.Tensor, mixup_alpha: float, cutmix_alpha: float
) -> tuple[torch.Tensor, torch.Tensor, float]:
    """``(mixed x, permutation, λ)``: the loss is ``λ·L(y) + (1−λ)·L(y[perm])``.

    With both α > 0, each batch uses one of the two at random (as timm does).
    """
    use_cutmix = cutmix_alpha > 0 and (mixup_alpha <= 0 or bool(torch.rand(()) < 0.5))
    alpha = cutmix_alpha if use_cutmix else mixup_alpha
    lam = float(torch.distributions.Beta(alpha, alpha).sample())
    perm = torch.randperm(x.shape[0]).to(x.device)
    if not use_cutmix:
        return lam * x + (1 - lam) * x[perm], perm, lam
    # CutMix: paste a box of area (1−λ)·H·W from the partner image; λ is then the kept area.
    h, w = x.shape[-2:]
    cut_h, cut_w = int(h * (1 - lam) ** 0.5), int(w * (1 - lam) ** 0.5)
    cy, cx = int(torch.randint(h, ())), int(torch.randint(w, ()))
    y0, y1 = max(cy - cut_h // 2, 0), min(cy + cut_h // 2, h)
    x0, x1 = max(cx - cut_w // 2, 0), min(cx + cut_w // 2, w)
    mixed = x.clone()
    mixed[..., y0:y1, x0:x1] = x[perm][..., y0:y1, x0:x1]
    return mixed, perm, 1 - (y1 - y0) * (x1 - x0) / (h * w)
