"""Building blocks of the diffusion U-Net (Ho et al., 2020, after PixelCNN++ / Wide ResNets).

- :func:`timestep_embedding`: the Transformer's sinusoidal position code, applied to the noise
  level t, so that one network serves every step of the diffusion;
- :class:`TimeResBlock`: GroupNorm → SiLU → 3×3 conv, plus the time embedding added per channel,
  GroupNorm → SiLU → dropout → 3×3 conv, and a residual connection;
- :class:`SelfAttention2d`: multi-head self-attention over the H·W positions of a feature map
  (used at the lowest resolution only, where H·W is small);
- :class:`Down` / :class:`Up`: strided 3×3 conv, and nearest-neighbour upsampling + 3×3 conv
  (to the size of the skip connection, so odd sides such as 7 work).

>>> block = TimeResBlock(8, 16, time_dim=32)
>>> block(torch.randn(2, 8, 7, 7), torch.randn(2, 32)).shape
torch.Size([2, 16, 7, 7])
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["timestep_embedding", "TimeResBlock", "SelfAttention2d", "Down", "Up", "group_norm"]


def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10_000.0) -> torch.Tensor:
    """Sinusoidal embedding of (possibly fractional) steps ``t`` (N,) → (N, dim).

    Half the channels are ``sin(t·ω_k)``, half ``cos(t·ω_k)``, with frequencies ω_k falling
    geometrically from 1 to 1/max_period (Vaswani et al., 2017, §3.5).

    >>> e = timestep_embedding(torch.tensor([0, 10]), 8)
    >>> e.shape, e[0, :4].tolist()  # sin(0) = 0
    (torch.Size([2, 8]), [0.0, 0.0, 0.0, 0.0])
    """
    half = dim // 2
    freqs = torch.exp(
        -math.log(max_period) * torch.arange(half, dtype=torch.float32, device=t.device) / half
    )
    args = t.float()[:, None] * freqs[None]  # (N, half)
    emb = torch.cat([torch.sin(args), torch.cos(args)], dim=1)
    if dim % 2:
        emb = F.pad(emb, (0, 1))
    return emb


def group_norm(channels: int, groups: int = 8) -> nn.GroupNorm:
    """GroupNorm with at most ``groups`` groups that divide ``channels`` (batch-independent:
    samples drawn one at a time behave as in training)."""
    g = math.gcd(channels, groups)
    return nn.GroupNorm(g, channels)


class TimeResBlock(nn.Module):
    """Residual block conditioned on the time embedding (N, time_dim): (N, C_in, H, W) →
    (N, C_out, H, W)."""

    def __init__(
        self, in_ch: int, out_ch: int, *, time_dim: int, dropout: float = 0.0, groups: int = 8
    ) -> None:
        super().__init__()
        self.norm1, self.conv1 = group_norm(in_ch, groups), nn.Conv2d(in_ch, out_ch, 3, padding=1)
        self.time = nn.Linear(time_dim, out_ch)  # a per-channel shift for this noise level
        self.norm2, self.conv2 = group_norm(out_ch, groups), nn.Conv2d(out_ch, out_ch, 3, padding=1)
        self.dropout = nn.Dropout(dropout)
        self.skip = nn.Conv2d(in_ch, out_ch, 1) if in_ch != out_ch else nn.Identity()

    def forward(self, x: torch.Tensor, temb: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.time(F.silu(temb))[:, :, None, None]
        h = self.conv2(self.dropout(F.silu(self.norm2(h))))
        return self.skip(x) + h


class SelfAttention2d(nn.Module):
    """Pre-norm multi-head self-attention over spatial positions, with a residual connection.

    >>> SelfAttention2d(16, heads=4)(torch.randn(2, 16, 7, 7)).shape
    torch.Size([2, 16, 7, 7])
    """

    def __init__(self, channels: int, heads: int = 4, groups: int = 8) -> None:
        super().__init__()
        if channels % heads:
            raise ValueError(f"attention: {channels} channels do not split into {heads} heads")
        self.heads = heads
        self.norm = group_norm(channels, groups)
        self.qkv = nn.Conv2d(channels, 3 * channels, 1)
        self.out = nn.Conv2d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        q, k, v = self.qkv(self.norm(x)).reshape(n, 3, self.heads, c // self.heads, h * w).unbind(1)
        # (N, heads, HW, C/heads) each: every position attends to every other one.
        y = F.scaled_dot_product_attention(q.transpose(-1, -2), k.transpose(-1, -2),
                                           v.transpose(-1, -2))  # fmt: skip
        return x + self.out(y.transpose(-1, -2).reshape(n, c, h, w))


class Down(nn.Module):
    """Halve the resolution: a 3×3 conv with stride 2 (H → ⌈H/2⌉)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, stride=2, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class Up(nn.Module):
    """Nearest-neighbour upsampling to ``size`` (the skip connection's), then a 3×3 conv."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        return self.conv(F.interpolate(x, size=size, mode="nearest"))
