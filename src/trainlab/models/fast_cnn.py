"""A CNN built for accuracy per FLOP on small images: trainlab's default Fashion-MNIST model.

The design follows the fastest known small-image training recipes (airbench, Jordan 2024,
arXiv 2404.00498), scaled to 28×28 grey images::

    whiten  frozen 2×2 patch-whitening conv → act          (N, 8, 27, 27)
    block   conv3×3 → maxpool2 → BN → act → conv3×3 → BN → act   (N, w1, 13, 13)
    block   conv3×3 → maxpool2 → BN → act → conv3×3 → BN → act   (N, w2, 6, 6)
    block   conv3×3 → maxpool2 → BN → act → conv3×3 → BN → act   (N, w3, 3, 3)
    head    global max pool → linear (no bias) × head_scale    (N, num_classes)

What makes it cheap: the first layer is a fixed whitening of 2×2 patches (the eigenvectors of
the patches' covariance, fitted on the first training batch), so the network starts from
decorrelated inputs instead of learning them; each block pools right after its first
convolution, so batch norm and the second convolution run on a quarter of the pixels; batch
norm has no learned scale (the following convolution has one), and every convolution starts as
an identity map on its first channels (Dirac initialisation), which makes the deep stack train
like a shallow one in the first steps.

>>> model = fast_cnn(num_classes=10, in_channels=1)
>>> model(torch.randn(2, 1, 28, 28)).shape
torch.Size([2, 10])
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from trainlab.models.layers import make_act
from trainlab.models.layers.pool import MaxPool2x2
from trainlab.models.registry import register_model

__all__ = ["FastCNN", "PatchWhitening", "fast_cnn"]


class PatchWhitening(nn.Module):
    """A frozen k×k convolution that whitens image patches (plus a learned bias).

    Its ``2·C·k²`` filters are the eigenvectors ``v`` of the patch covariance scaled by
    ``1/√(λ + eps)``, and their negatives (so a following ReLU/GELU loses no sign). They are
    fitted once, on the first batch the model sees in training mode, and stored as buffers:
    a checkpoint or an exported model carries them, and no optimizer changes them.
    """

    def __init__(self, in_channels: int, kernel: int = 2, eps: float = 5e-4) -> None:
        super().__init__()
        dim = in_channels * kernel * kernel
        self.kernel, self.eps = kernel, eps
        self.register_buffer("weight", torch.zeros(2 * dim, in_channels, kernel, kernel))
        self.register_buffer("fitted", torch.zeros((), dtype=torch.bool))
        self.bias = nn.Parameter(torch.zeros(2 * dim))
        # The buffer read once on the host, then remembered: no device sync per training step.
        self._known_fitted = False

    @property
    def out_channels(self) -> int:
        return self.weight.shape[0]

    @torch.no_grad()
    def fit(self, x: torch.Tensor) -> None:
        """Set the filters from the patches of ``x`` (N, C, H, W). Under data parallelism
        (``torch.distributed`` initialised) every rank calls it on its shard of the first batch,
        and the patch statistics of all shards are summed: every rank gets the same filters,
        those one process would fit on the whole batch."""
        k = self.kernel
        patches = F.unfold(x.float(), k).transpose(1, 2).reshape(-1, x.shape[1] * k * k)
        gram = patches.T @ patches
        count = torch.tensor(float(len(patches)), device=gram.device)
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.all_reduce(gram)
            torch.distributed.all_reduce(count)
        eigvals, eigvecs = torch.linalg.eigh((gram / count).double())
        filters = (eigvecs.T / torch.sqrt(eigvals.clamp_min(0) + self.eps)[:, None]).float()
        filters = filters.reshape(-1, x.shape[1], k, k)
        self.weight.copy_(torch.cat([filters, -filters]))
        self.fitted.fill_(True)

    def _load_from_state_dict(self, *args: Any, **kwargs: Any) -> None:
        super()._load_from_state_dict(*args, **kwargs)
        self._known_fitted = False  # read the loaded buffer again at the next training step

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training and not self._known_fitted:
            if not bool(self.fitted):
                self.fit(x)
            self._known_fitted = True
        return F.conv2d(x, self.weight.to(x.dtype), self.bias.to(x.dtype))


def _norm(channels: int, momentum: float, scale: bool) -> nn.BatchNorm2d:
    bn = nn.BatchNorm2d(channels, momentum=momentum, eps=1e-12)
    bn.weight.requires_grad_(scale)  # without a learned scale: the next conv has one
    return bn


class ConvBlock(nn.Sequential):
    """conv3×3 → maxpool2 → BN → act → conv3×3 → BN → act."""

    def __init__(self, c_in: int, c_out: int, act: str, bn_momentum: float, bn_scale: bool):
        super().__init__(
            nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
            MaxPool2x2(),
            _norm(c_out, bn_momentum, bn_scale),
            make_act(act),
            nn.Conv2d(c_out, c_out, 3, padding=1, bias=False),
            _norm(c_out, bn_momentum, bn_scale),
            make_act(act),
        )


class FastCNN(nn.Module):
    def __init__(
        self,
        num_classes: int,
        in_channels: int,
        widths: list[int],
        act: str = "gelu",
        whiten: bool = True,
        bn_momentum: float = 0.4,
        bn_scale: bool = False,
        head_scale: float = 1 / 9,
        dirac: bool = True,
    ) -> None:
        super().__init__()
        self.in_channels = in_channels
        if whiten:
            stem: nn.Module = PatchWhitening(in_channels)
            c = stem.out_channels  # type: ignore[assignment]
        else:
            c = 8 * in_channels
            stem = nn.Conv2d(in_channels, c, 2)
        self.whiten = nn.Sequential(stem, make_act(act))
        blocks = []
        for w in widths:
            blocks.append(ConvBlock(c, w, act, bn_momentum, bn_scale))
            c = w
        self.features = nn.Sequential(*blocks)
        self.pool = nn.Sequential(nn.AdaptiveMaxPool2d(1), nn.Flatten())
        self.head = nn.Linear(c, num_classes, bias=False)
        self.head_scale = head_scale
        if dirac:
            for m in self.features.modules():
                if isinstance(m, nn.Conv2d):
                    n = min(m.in_channels, m.out_channels)
                    torch.nn.init.dirac_(m.weight.data[:n])  # identity on the first channels

    def example_input(self, batch: int) -> tuple[torch.Tensor]:
        """A batch of the images the model is built for: (batch, C, 28, 28)."""
        return (torch.randn(batch, self.in_channels, 28, 28),)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x: (N, C, 28, 28) → (N, 2·4·C, 27, 27) → … → (N, widths[-1], 3, 3) → (N, classes)
        return self.head(self.pool(self.features(self.whiten(x)))) * self.head_scale


@register_model("fast_cnn")
def fast_cnn(
    *,
    num_classes: int = 10,
    in_channels: int = 1,
    widths: list[int] = [32, 64, 128],  # noqa: B006 - never mutated
    act: str = "gelu",
    whiten: bool = True,
    bn_momentum: float = 0.4,
    bn_scale: bool = False,
    head_scale: float = 1 / 9,
    dirac: bool = True,
) -> nn.Module:
    """Airbench-style CNN for small images (default model of ``recipes/fashion_mnist.yaml``).

    ``widths``: channels of the three conv blocks; ``whiten``: frozen 2×2 patch-whitening first
    layer fitted on the first training batch (``false``: a learned 2×2 conv); ``bn_scale``:
    learn batch norm's scale (default: shift only); ``dirac``: identity-initialised convs;
    ``head_scale``: multiplies the logits (1/9 keeps them small at the start).
    """
    return FastCNN(num_classes, in_channels, list(widths), act, whiten, bn_momentum, bn_scale,
                   head_scale, dirac)  # fmt: skip
