"""CycleGAN (Zhu et al., 2017): two ResNet-block generators and two PatchGAN discriminators.

One module holds the four networks, so a recipe names one model and the ``cyclegan`` task
trains them: ``model.generators`` (``ab``: G, A → B; ``ba``: F, B → A) with the recipe's
optimizer, ``model.discriminators`` (``a``: D_A judges A images; ``b``: D_B) with the task's.

Forward contract: ``model(x (N, C, H, W) in [-1, 1]) -> G(x)`` (N, C, H, W) in [-1, 1] (tanh),
the translation A → B. A discriminator maps images to a map of patch logits (N, 1, h, w): each
output judges one receptive field ("is this patch real?"), not the whole image.

Layouts follow the paper's reference code, scaled down by options: the generator is
reflection-pad 7×7 conv → ``n_down`` stride-2 3×3 convs (channels doubling) → ``blocks``
residual blocks → ``n_down`` transposed convs → 7×7 conv → tanh, instance norm throughout; the
PatchGAN is ``d_layers`` stride-2 4×4 convs, one stride-1 4×4 conv and a 4×4 conv to one
channel (leaky ReLU 0.2, instance norm but not on the first conv). Weights start from
N(0, 0.02), as in the paper.
"""

from __future__ import annotations

import torch
from torch import nn

from trainlab.models.registry import register_model

__all__ = ["CycleGAN", "ResnetBlock", "resnet_generator", "patch_discriminator"]


class ResnetBlock(nn.Module):
    """x + conv-norm-relu-conv-norm(x), reflection padding (no border artefacts)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.ReflectionPad2d(1),
            nn.Conv2d(channels, channels, 3, bias=False),
            nn.InstanceNorm2d(channels, affine=True),
            nn.ReLU(inplace=True),
            nn.ReflectionPad2d(1),
            nn.Conv2d(channels, channels, 3, bias=False),
            nn.InstanceNorm2d(channels, affine=True),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


def _norm_relu(channels: int) -> list[nn.Module]:
    return [nn.InstanceNorm2d(channels, affine=True), nn.ReLU(inplace=True)]


def resnet_generator(channels: int, width: int, n_down: int, blocks: int) -> nn.Sequential:
    """(N, C, H, W) → (N, C, H, W) in [-1, 1]; H and W divisible by 2**n_down.

    >>> resnet_generator(1, 8, 2, 2)(torch.zeros(2, 1, 28, 28)).shape
    torch.Size([2, 1, 28, 28])
    """
    layers: list[nn.Module] = [nn.ReflectionPad2d(3), nn.Conv2d(channels, width, 7, bias=False)]
    layers += _norm_relu(width)
    c = width
    for _ in range(n_down):  # H → H/2 per step, channels doubled
        layers += [nn.Conv2d(c, 2 * c, 3, stride=2, padding=1, bias=False), *_norm_relu(2 * c)]
        c *= 2
    layers += [ResnetBlock(c) for _ in range(blocks)]
    for _ in range(n_down):  # back up: H/2 → H (output_padding restores the odd-free size)
        layers += [
            nn.ConvTranspose2d(c, c // 2, 3, stride=2, padding=1, output_padding=1, bias=False),
            *_norm_relu(c // 2),
        ]
        c //= 2
    layers += [nn.ReflectionPad2d(3), nn.Conv2d(c, channels, 7), nn.Tanh()]
    return nn.Sequential(*layers)


def patch_discriminator(channels: int, width: int, layers: int) -> nn.Sequential:
    """PatchGAN: (N, C, H, W) → (N, 1, h, w) patch logits.

    >>> patch_discriminator(1, 8, 2)(torch.zeros(2, 1, 28, 28)).shape   # 28 → 14 → 7 → 6 → 5
    torch.Size([2, 1, 5, 5])
    """
    net: list[nn.Module] = [nn.Conv2d(channels, width, 4, 2, 1), nn.LeakyReLU(0.2, inplace=True)]
    c = width
    for i in range(1, layers + 1):  # layers − 1 more stride-2 convs, then one stride-1 conv
        out = width * min(2**i, 8)
        stride = 2 if i < layers else 1
        net += [nn.Conv2d(c, out, 4, stride, 1, bias=False),
                nn.InstanceNorm2d(out, affine=True), nn.LeakyReLU(0.2, inplace=True)]  # fmt: skip
        c = out
    net.append(nn.Conv2d(c, 1, 4, 1, 1))
    return nn.Sequential(*net)


class CycleGAN(nn.Module):
    """Generators ``ab`` (G), ``ba`` (F) and discriminators ``a`` (D_A), ``b`` (D_B).

    >>> m = cyclegan(channels=1, width=8, blocks=1, d_width=8)
    >>> m(torch.zeros(2, 1, 28, 28)).shape, m.discriminators["b"](torch.zeros(2, 1, 28, 28)).shape
    (torch.Size([2, 1, 28, 28]), torch.Size([2, 1, 5, 5]))
    """

    def __init__(self, g_ab: nn.Module, g_ba: nn.Module, d_a: nn.Module, d_b: nn.Module,
                 channels: int) -> None:  # fmt: skip
        super().__init__()
        self.generators = nn.ModuleDict({"ab": g_ab, "ba": g_ba})
        self.discriminators = nn.ModuleDict({"a": d_a, "b": d_b})
        self.channels = channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.generators["ab"](x)

    def translate(self, x: torch.Tensor, direction: str = "ab") -> torch.Tensor:
        """A → B (``ab``, G) or B → A (``ba``, F)."""
        return self.generators[direction](x)

    def example_input(self, batch: int = 2) -> tuple[torch.Tensor, ...]:
        return (torch.rand(batch, self.channels, 28, 28) * 2 - 1,)


def _init(m: nn.Module) -> None:
    # Zhu et al. (reference code, init_type="normal"): conv weights N(0, 0.02), norm scales
    # N(1, 0.02), biases 0.
    if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.normal_(m.weight, 0.0, 0.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, nn.InstanceNorm2d) and m.weight is not None:
        nn.init.normal_(m.weight, 1.0, 0.02)
        nn.init.zeros_(m.bias)


@register_model("cyclegan")
def cyclegan(
    *,
    channels: int = 1,  # channels of one domain's images
    width: int = 32,  # generator channels after the 7×7 stem (doubled per down step)
    n_down: int = 2,  # stride-2 down (and up) steps of each generator
    blocks: int = 6,  # residual blocks at the lowest resolution
    d_width: int = 32,  # discriminator channels after its first conv
    d_layers: int = 2,  # stride-2 convs of each PatchGAN (2: 5×5 logits at 28 px)
) -> nn.Module:
    """CycleGAN: two ResNet generators (``width`` channels after the stem, ``n_down`` stride-2
    steps, ``blocks`` residual blocks) and two PatchGAN discriminators (``d_width``,
    ``d_layers``) for images of ``channels`` channels per domain (sides divisible by
    2**n_down). The defaults suit 28 px images: ``d_layers: 2`` gives 5×5 logits of 34 px
    receptive field each (the image, padded), ``d_layers: 1`` 12×12 logits of 16 px patches.
    The paper (256 px): width 64, n_down 2, blocks 9, d_width 64, d_layers 3 (70 px patches).
    """
    if min(channels, width, d_width, d_layers) < 1 or n_down < 0 or blocks < 0:
        raise ValueError("cyclegan: channels, width, d_width, d_layers ≥ 1; n_down, blocks ≥ 0")
    model = CycleGAN(
        resnet_generator(channels, width, n_down, blocks),
        resnet_generator(channels, width, n_down, blocks),
        patch_discriminator(channels, d_width, d_layers),
        patch_discriminator(channels, d_width, d_layers),
        channels,
    )
    model.apply(_init)
    return model
