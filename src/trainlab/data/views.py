"""Random views of an image batch for contrastive self-supervised learning (SimCLR).

A *view* is the batch seen through one random crop resized back to full size, an optional
horizontal flip and a small brightness/contrast change, drawn independently per sample (Chen et
al., 2020, section 3 and appendix A; colour distortion becomes intensity jitter on grey images).
The crop, the resize and the flip are one affine resampling of the whole batch
(``F.affine_grid`` + ``F.grid_sample``): no per-sample Python work, on any device.

Unlike :mod:`trainlab.data.augment` (applied by the loader, once per training batch), views are
made by the ``simclr`` task: two per image, also in evaluation (from a private seeded RNG).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

__all__ = ["ViewSpec", "random_view", "two_views"]


@dataclass(frozen=True)
class ViewSpec:
    """What one view may change.

    ``scale``: the crop's share of the image area, drawn uniformly from [low, high];
    ``ratio``: its aspect ratio (width / height), log-uniform in [low, high]; ``flip``: mirror
    with probability 0.5; ``jitter``: contrast × U(1 − j, 1 + j) about the image's own mean and
    brightness + U(−j, j), in the units of the (normalised) input.
    """

    scale: tuple[float, float] = (0.35, 1.0)
    ratio: tuple[float, float] = (3 / 4, 4 / 3)
    flip: bool = True
    jitter: float = 0.2


def _uniform(n: int, low: float, high: float, like: torch.Tensor, gen: torch.Generator | None):
    u = torch.rand(n, generator=gen, device=gen.device if gen is not None else like.device)
    return (low + (high - low) * u).to(like.device, torch.float32)


def _crop_theta(
    n: int, spec: ViewSpec, x: torch.Tensor, gen: torch.Generator | None
) -> torch.Tensor:
    """(N, 2, 3) affine maps from output to input coordinates in [-1, 1]: a crop of relative
    width w and height h centred at (cx, cy), mirrored when flipped."""
    area = _uniform(n, *spec.scale, x, gen)
    log_r = _uniform(n, math.log(spec.ratio[0]), math.log(spec.ratio[1]), x, gen)
    w = (area * log_r.exp()).sqrt().clamp(max=1.0)  # share of the width, ≤ 1: inside the image
    h = (area / log_r.exp()).sqrt().clamp(max=1.0)
    cx = (2 * _uniform(n, 0.0, 1.0, x, gen) - 1) * (1 - w)  # the crop stays inside [-1, 1]
    cy = (2 * _uniform(n, 0.0, 1.0, x, gen) - 1) * (1 - h)
    sign = torch.ones_like(w)
    if spec.flip:
        sign = torch.where(_uniform(n, 0.0, 1.0, x, gen) < 0.5, -sign, sign)
    zero = torch.zeros_like(w)
    return torch.stack([torch.stack([w * sign, zero, cx], 1), torch.stack([zero, h, cy], 1)], 1)


def random_view(
    x: torch.Tensor, spec: ViewSpec = ViewSpec(), generator: torch.Generator | None = None
) -> torch.Tensor:
    """One random view of each image of ``x`` (N, C, H, W); same shape, float.

    ``generator``: the RNG to draw from (default: torch's global RNG on ``x``'s device, which
    checkpoints save and resume restores).

    >>> x = torch.rand(4, 1, 28, 28)
    >>> random_view(x).shape
    torch.Size([4, 1, 28, 28])
    >>> same = ViewSpec(scale=(1, 1), ratio=(1, 1), flip=False, jitter=0)  # the whole image
    >>> torch.allclose(random_view(x, same), x, atol=1e-5)
    True
    """
    if x.dim() != 4:
        raise ValueError(f"views need image batches (N, C, H, W), got shape {tuple(x.shape)}")
    n = x.shape[0]
    xf = x.float()
    theta = _crop_theta(n, spec, xf, generator)
    grid = F.affine_grid(theta, list(xf.shape), align_corners=False)
    out = F.grid_sample(xf, grid, mode="bilinear", padding_mode="border", align_corners=False)
    if spec.jitter > 0:
        contrast = _uniform(n, 1 - spec.jitter, 1 + spec.jitter, xf, generator).view(-1, 1, 1, 1)
        bright = _uniform(n, -spec.jitter, spec.jitter, xf, generator).view(-1, 1, 1, 1)
        mean = out.mean(dim=(1, 2, 3), keepdim=True)
        out = (out - mean) * contrast + mean + bright
    return out


def two_views(
    x: torch.Tensor, spec: ViewSpec = ViewSpec(), generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Two independent random views of ``x`` (N, C, H, W): the positive pairs of SimCLR.

    >>> a, b = two_views(torch.rand(8, 1, 28, 28))
    >>> a.shape == b.shape and not torch.equal(a, b)
    True
    """
    return random_view(x, spec, generator), random_view(x, spec, generator)
