"""A small U-Net noise predictor for denoising diffusion (DDPM; Ho et al., 2020).

Forward contract: ``model(x_t (N, C, H, W), t (N,) int or float) -> ε̂ (N, C, H, W)``, the
network's estimate of the Gaussian noise mixed into ``x_t`` at step ``t``. The noise schedule,
the loss and the samplers belong to the ``diffusion`` task (:mod:`trainlab.tasks.diffusion`);
the model knows nothing of them beyond the step number, which reaches every residual block
through a sinusoidal embedding and a small MLP.

Layout for ``base=32, mults=[1, 2, 2]`` on 28×28 inputs::

    conv 3×3 → 32 @28 ─ res ×blocks ─ down → 32 @14 ─ res ×blocks (64) ─ down → 64 @7
        ─ res ×blocks (64) [+ attention] ─ middle: res, attention, res ─
    up path mirrors it, each level concatenating the skip activations of the down path,
    then GroupNorm → SiLU → conv 3×3 → C channels (ε̂).

The output convolution starts at zero (ε̂ = 0 at initialisation), a common DDPM choice that
makes the first loss ≈ 1 (the noise's variance) whatever the width.
"""

from __future__ import annotations

import torch
from torch import nn

from trainlab.models.layers.unet_blocks import (
    Down,
    SelfAttention2d,
    TimeResBlock,
    Up,
    group_norm,
    timestep_embedding,
)
from trainlab.models.registry import register_model

__all__ = ["UNet", "ddpm_unet"]


class _Level(nn.Module):
    """One resolution of the down or up path: residual blocks, optional attention after each."""

    def __init__(self, chans: list[int], time_dim: int, attention: bool, **kw: float) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(
            TimeResBlock(a, b, time_dim=time_dim, **kw) for a, b in zip(chans[:-1], chans[1:])
        )
        self.attn = nn.ModuleList(
            SelfAttention2d(b) if attention else nn.Identity() for b in chans[1:]
        )

    def forward(self, x: torch.Tensor, temb: torch.Tensor) -> torch.Tensor:
        for block, attn in zip(self.blocks, self.attn):
            x = attn(block(x, temb))
        return x


class UNet(nn.Module):
    """ε-prediction U-Net; see the module docstring for the layout.

    >>> net = UNet(in_channels=1, base=8, mults=[1, 2], blocks=1, attention=False)
    >>> net(torch.randn(2, 1, 28, 28), torch.tensor([0, 999])).shape
    torch.Size([2, 1, 28, 28])
    """

    def __init__(
        self,
        *,
        in_channels: int = 1,
        image_size: int = 28,
        base: int = 32,
        mults: list[int] | tuple[int, ...] = (1, 2, 2),
        blocks: int = 1,
        attention: bool = True,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        if base < 1 or blocks < 1 or not mults or min(mults) < 1:
            raise ValueError(f"ddpm_unet: base, blocks and mults must be ≥ 1 ({base}, {blocks}, "
                             f"{list(mults)})")  # fmt: skip
        self.in_channels, self.image_size = in_channels, image_size
        self.time_dim = 4 * base
        self.time_mlp = nn.Sequential(
            nn.Linear(base, self.time_dim), nn.SiLU(), nn.Linear(self.time_dim, self.time_dim)
        )
        self.stem = nn.Conv2d(in_channels, base, 3, padding=1)
        widths = [base * m for m in mults]
        kw = {"dropout": dropout}
        last = len(widths) - 1
        self.down, self.downsample = nn.ModuleList(), nn.ModuleList()
        ch = base
        for i, w in enumerate(widths):  # attention only at the lowest resolution
            self.down.append(_Level([ch] + [w] * blocks, self.time_dim, attention and i == last,
                                    **kw))  # fmt: skip
            self.downsample.append(Down(w) if i < last else nn.Identity())
            ch = w
        self.mid1 = TimeResBlock(ch, ch, time_dim=self.time_dim, **kw)
        self.mid_attn = SelfAttention2d(ch) if attention else nn.Identity()
        self.mid2 = TimeResBlock(ch, ch, time_dim=self.time_dim, **kw)
        self.up, self.upsample = nn.ModuleList(), nn.ModuleList()
        for i, w in reversed(list(enumerate(widths))):
            skip = widths[i]  # the down level's output, concatenated on the way up
            self.up.append(_Level([ch + skip] + [w] * blocks, self.time_dim,
                                  attention and i == last, **kw))  # fmt: skip
            self.upsample.append(Up(w) if i > 0 else nn.Identity())
            ch = w
        self.head = nn.Sequential(
            group_norm(ch), nn.SiLU(), nn.Conv2d(ch, in_channels, 3, padding=1)
        )
        nn.init.zeros_(self.head[-1].weight)
        nn.init.zeros_(self.head[-1].bias)

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        if t.dim() == 0:
            t = t.expand(len(x))
        temb = self.time_mlp(timestep_embedding(t, self.stem.out_channels))  # (N, time_dim)
        h = self.stem(x)
        skips: list[torch.Tensor] = []
        for level, down in zip(self.down, self.downsample):
            h = level(h, temb)
            skips.append(h)  # (N, w_i, H_i, W_i)
            h = down(h)
        h = self.mid2(self.mid_attn(self.mid1(h, temb)), temb)
        for level, up in zip(self.up, self.upsample):
            h = level(torch.cat([h, skips.pop()], dim=1), temb)
            if not isinstance(up, nn.Identity):
                h = up(h, tuple(skips[-1].shape[-2:]))
        return self.head(h)

    def example_input(self, batch: int = 2) -> tuple[torch.Tensor, ...]:
        x = torch.randn(batch, self.in_channels, self.image_size, self.image_size)
        return x, torch.randint(0, 1000, (batch,))


@register_model("ddpm_unet")
def ddpm_unet(
    *,
    in_channels: int = 1,
    image_size: int = 28,
    base: int = 32,
    mults: list[int] = [1, 2, 2],  # noqa: B006 - never mutated
    blocks: int = 1,
    attention: bool = True,
    dropout: float = 0.1,
) -> nn.Module:
    """DDPM noise predictor: U-Net of ``len(mults)`` resolutions (widths ``base·mults``),
    ``blocks`` time-conditioned residual blocks per level, self-attention at the lowest
    resolution (``attention``); use with ``task: diffusion``."""
    return UNet(in_channels=in_channels, image_size=image_size, base=base, mults=mults,
                blocks=blocks, attention=attention, dropout=dropout)  # fmt: skip
