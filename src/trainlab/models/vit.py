"""Vision Transformer (Dosovitskiy et al., 2020): images as sequences of patches.

(N, C, H, W) → P×P patches, each linearly embedded (a stride-P conv) → (N, HW/P², D) → prepend a
learned class token → add learned position embeddings → pre-norm Transformer encoder → LN →
class token → linear head. ``vit_b_16`` has exactly torchvision's parameter count.
"""

from __future__ import annotations

import torch
from torch import nn

from trainlab.models.examples import image_batch
from trainlab.models.layers.checkpointing import checkpointable, run_blocks
from trainlab.models.registry import register_model
from trainlab.models.transformer import TransformerBlock

__all__ = ["VisionTransformer", "vit", "vit_b_16", "vit_tiny"]


@checkpointable
class VisionTransformer(nn.Module):
    def __init__(
        self,
        image_size: int,
        patch_size: int,
        in_channels: int,
        num_classes: int,
        dim: int,
        depth: int,
        heads: int,
        mlp_dim: int,
        dropout: float,
    ) -> None:
        super().__init__()
        if image_size % patch_size:
            raise ValueError(
                f"image_size {image_size} is not a multiple of patch_size {patch_size}"
            )
        self.in_channels, self.image_size = in_channels, image_size
        n_patches = (image_size // patch_size) ** 2
        # A P×P conv with stride P is exactly "flatten each patch, multiply by a (P²C, D) matrix".
        self.patch_embed = nn.Conv2d(in_channels, dim, patch_size, patch_size)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.empty(1, n_patches + 1, dim).normal_(std=0.02))
        self.drop = nn.Dropout(dropout)
        self.blocks = nn.Sequential(
            *(TransformerBlock(dim, heads, mlp_dim, dropout) for _ in range(depth))
        )
        self.ln = nn.LayerNorm(dim, eps=1e-6)
        self.grad_checkpointing = False  # recompute each block's activations in backward
        self.head = nn.Linear(dim, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed(x)  # (N, C, H, W) → (N, D, H/P, W/P)
        x = x.flatten(2).transpose(1, 2)  # → (N, L, D) with L = HW / P²
        cls = self.cls_token.expand(x.shape[0], -1, -1)  # (N, 1, D)
        x = self.drop(torch.cat([cls, x], dim=1) + self.pos_embed)  # (N, L + 1, D)
        x = self.ln(run_blocks(self.blocks, x, self.grad_checkpointing))
        return self.head(x[:, 0])  # the class token summarises the image: (N, num_classes)

    def example_input(self, batch: int = 2) -> tuple[torch.Tensor, ...]:
        return image_batch(batch, self.in_channels, self.image_size)


@register_model("vit")
def vit(
    *,
    image_size: int = 28,
    patch_size: int = 7,
    in_channels: int = 1,
    num_classes: int = 10,
    dim: int = 64,
    depth: int = 4,
    heads: int = 4,
    mlp_dim: int = 128,
    dropout: float = 0.0,
) -> nn.Module:
    """Any ViT: image/patch size, width ``dim``, ``depth`` blocks, ``heads``, MLP width."""
    return VisionTransformer(
        image_size, patch_size, in_channels, num_classes, dim, depth, heads, mlp_dim, dropout
    )


@register_model("vit_tiny")
def vit_tiny(
    *,
    image_size: int = 28,
    patch_size: int = 7,
    in_channels: int = 1,
    num_classes: int = 10,
    dim: int = 64,
    depth: int = 4,
    heads: int = 4,
    mlp_dim: int = 128,
    dropout: float = 0.1,
) -> nn.Module:
    """ViT for 28×28 single-channel images: 16 patches of 7×7, width 64, 4 blocks, 4 heads."""
    return VisionTransformer(
        image_size, patch_size, in_channels, num_classes, dim, depth, heads, mlp_dim, dropout
    )


@register_model("vit_b_16")
def vit_b_16(
    *,
    image_size: int = 224,
    in_channels: int = 3,
    num_classes: int = 1000,
    dropout: float = 0.0,
) -> nn.Module:
    """ViT-Base/16: 224×224, 16×16 patches, width 768, 12 blocks, 12 heads, MLP 3072 (86.6M)."""
    return VisionTransformer(image_size, 16, in_channels, num_classes, 768, 12, 12, 3072, dropout)
