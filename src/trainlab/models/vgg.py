"""VGG (Simonyan & Zisserman, 2014): blocks of 3×3 convolutions, each block ending in a 2×2 pool.

An architecture is a block list ``[(convs, channels), ...]``: VGG-16 is
``[(2, 64), (2, 128), (3, 256), (3, 512), (3, 512)]``.
"""

from __future__ import annotations

import torch
from torch import nn

from trainlab.errors import ConfigError
from trainlab.models.examples import image_batch
from trainlab.models.layers.norm import check_position, make_norm1d, norm_act
from trainlab.models.registry import register_model

__all__ = ["VGG", "VGG_ARCHS", "vgg", "vgg_small"]

VGG_ARCHS: dict[str, list[tuple[int, int]]] = {
    "vgg11": [(1, 64), (1, 128), (2, 256), (2, 512), (2, 512)],
    "vgg13": [(2, 64), (2, 128), (2, 256), (2, 512), (2, 512)],
    "vgg16": [(2, 64), (2, 128), (3, 256), (3, 512), (3, 512)],
    "vgg19": [(2, 64), (2, 128), (4, 256), (4, 512), (4, 512)],
}


def vgg_block(
    convs: int,
    c_in: int,
    c_out: int,
    batch_norm: bool,
    norm: str = "batch",
    norm_position: str = "before_act",
) -> list[nn.Module]:
    """``convs`` × (conv3×3 → [norm] → ReLU) then a 2×2 max pool that halves H and W.

    ``norm`` is the normalisation ``batch_norm`` switches on; ``norm_position="after_act"``
    gives conv → ReLU → norm.
    """
    layers: list[nn.Module] = []
    for i in range(convs):
        # Conv keeps its bias even before BN, as torchvision does, so sizes match its VGG-BN.
        layers.append(nn.Conv2d(c_in if i == 0 else c_out, c_out, 3, padding=1))
        layers += norm_act(norm if batch_norm else "none", c_out, "relu", norm_position)
    layers.append(nn.MaxPool2d(2))
    return layers


def fc_layers(
    c_in: int, c_out: int, dropout: float, fc_bn: bool, norm: str, norm_position: str
) -> list[nn.Module]:
    """One hidden FC layer of the head: Linear → ReLU → Dropout, with ``norm`` before or after
    the ReLU when ``fc_bn`` is on (without it, torchvision's layout and parameter names)."""
    if not fc_bn:
        return [nn.Linear(c_in, c_out), nn.ReLU(inplace=True), nn.Dropout(dropout)]
    pair = [make_norm1d(norm, c_out), nn.ReLU(inplace=True)]
    if norm_position == "after_act":
        pair.reverse()
    return [nn.Linear(c_in, c_out), *pair, nn.Dropout(dropout)]


def head_pool(image_size: int, blocks: int, pool: int | None) -> int:
    """Side of the map the classifier sees: ``pool``, or (``None``) the feature map's own side
    at ``image_size``, so that the input resolution sets the first FC layer's width (224 → 7,
    96 → 3, 56 → 1 for five blocks), as the textbook's VGG does."""
    if pool is not None:
        return pool
    side = image_size // 2**blocks
    if side < 1:
        raise ConfigError(
            f"model.image_size: {image_size} px is too small for {blocks} VGG blocks (each "
            f"halves the side); use at least {2**blocks}, or fewer blocks in model.arch"
        )
    return side


class VGG(nn.Module):
    """VGG blocks → adaptive average pool to ``pool``×``pool`` → FC-hidden → FC-hidden → FC."""

    def __init__(
        self,
        arch: list[tuple[int, int]],
        num_classes: int,
        in_channels: int,
        batch_norm: bool,
        hidden: int,
        dropout: float,
        pool: int,
        image_size: int,
        norm: str = "batch",
        norm_position: str = "before_act",
        fc_bn: bool = False,
    ) -> None:
        super().__init__()
        if not arch:
            raise ValueError("VGG needs at least one (convs, channels) block")
        check_position(norm_position)
        self.in_channels, self.image_size = in_channels, image_size
        layers: list[nn.Module] = []
        c = in_channels
        for convs, channels in arch:
            layers += vgg_block(convs, c, channels, batch_norm, norm, norm_position)
            c = channels
        self.features = nn.Sequential(*layers)
        # ImageNet: 224 / 2⁵ = 7 and pool=7, so the pool is a no-op there (torchvision's layout).
        self.avgpool = nn.AdaptiveAvgPool2d(pool)
        self.classifier = nn.Sequential(
            nn.Flatten(),
            *fc_layers(c * pool * pool, hidden, dropout, fc_bn, norm, norm_position),
            *fc_layers(hidden, hidden, dropout, fc_bn, norm, norm_position),
            nn.Linear(hidden, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x: (N, C, H, W) → (N, channels[-1], H / 2^blocks, W / 2^blocks) → (N, num_classes)
        return self.classifier(self.avgpool(self.features(x)))

    def example_input(self, batch: int = 2) -> tuple[torch.Tensor, ...]:
        return image_batch(batch, self.in_channels, self.image_size)


def _named(key: str, batch_norm: bool) -> None:
    arch = VGG_ARCHS[key]

    def build(
        *,
        num_classes: int = 1000,
        in_channels: int = 3,
        hidden: int = 4096,
        dropout: float = 0.5,
        image_size: int = 224,
    ) -> nn.Module:
        return VGG(arch, num_classes, in_channels, batch_norm, hidden, dropout, 7, image_size)

    name = key + ("_bn" if batch_norm else "")
    build.__name__ = name
    build.__doc__ = (
        f"{key.upper()}{' with batch norm' if batch_norm else ''} at ImageNet sizes "
        f"(blocks {arch}); input (N, 3, 224, 224), same parameter count as torchvision's."
    )
    register_model(name)(build)


for _key in VGG_ARCHS:
    _named(_key, batch_norm=False)
    _named(_key, batch_norm=True)


@register_model("vgg")
def vgg(
    *,
    arch: list[tuple[int, int]] = VGG_ARCHS["vgg11"],  # noqa: B006 - never mutated
    num_classes: int = 10,
    in_channels: int = 1,
    batch_norm: bool = False,
    hidden: int = 4096,
    dropout: float = 0.5,
    pool: int | None = None,
    image_size: int = 224,
    norm: str = "batch",
    norm_position: str = "before_act",
    fc_bn: bool = False,
) -> nn.Module:
    """VGG with a custom block list ``arch = [[convs, channels], ...]`` (default VGG-11).

    ``image_size`` is the model's input resolution: the classifier's first layer sees the
    feature map at that size (7×7 at 224, 3×3 at 96, 1×1 at 56 px), unless ``pool`` fixes the
    side it is average-pooled to. ``norm`` / ``norm_position``: which normalisation
    ``batch_norm`` switches on in the conv blocks and ``fc_bn`` in the hidden FC layers,
    before or after each ReLU.

    Example: ``create_model("vgg", image_size=56, batch_norm=False, fc_bn=True)``.
    """
    arch = [tuple(b) for b in arch]
    return VGG(
        arch,
        num_classes,
        in_channels,
        batch_norm,
        hidden,
        dropout,
        head_pool(image_size, len(arch), pool),
        image_size,
        norm,
        norm_position,
        fc_bn,
    )


@register_model("vgg_small")
def vgg_small(
    *,
    arch: list[tuple[int, int]] = [(1, 16), (1, 32), (2, 64), (2, 128)],  # noqa: B006
    num_classes: int = 10,
    in_channels: int = 1,
    batch_norm: bool = True,
    hidden: int = 256,
    dropout: float = 0.5,
    image_size: int = 28,
    norm: str = "batch",
    norm_position: str = "before_act",
    fc_bn: bool = False,
) -> nn.Module:
    """A narrow VGG-11 for 28×28 images: four blocks take 28 → 1, so the head sees 128 features.

    The head always average-pools to 1×1, so a larger ``image_size`` (56, 84 after
    ``data.resize``) changes the compute, not the parameter count. ``batch_norm`` switches
    normalisation on in the conv blocks, ``fc_bn`` in the hidden FC layers.
    """
    return VGG(
        [tuple(b) for b in arch],
        num_classes,
        in_channels,
        batch_norm,
        hidden,
        dropout,
        1,
        image_size,
        norm,
        norm_position,
        fc_bn,
    )
