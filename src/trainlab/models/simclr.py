"""SimCLR's network (Chen et al., 2020): an encoder from the zoo plus a projection head.

Forward contract: ``model(x (N, C, H, W)) -> z (N, projection_dim)``, the projection the
NT-Xent loss compares (task ``simclr``); ``model.encode(x) -> h (N, feature_dim)`` is the
representation kept after pre-training (linear probe, k-NN, fine-tuning: ``trainlab probe``).
The paper found ``h``, before the head, the better representation: the head may discard what
the loss does not need (the augmentations' colour and orientation).

The encoder is any registered image classifier with its final ``nn.Linear`` replaced by the
identity, so ``h`` is exactly the feature vector a supervised run of the same model classifies
(for ``resnet_small``: the globally max-pooled last stage, ``widths[-1]`` values).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from trainlab.errors import ConfigError
from trainlab.models.examples import image_batch
from trainlab.models.registry import MODELS, create_model, register_model

__all__ = ["SimCLRNet", "simclr", "strip_head"]


def strip_head(net: nn.Module) -> int:
    """Replace the last ``nn.Linear`` of ``net`` (in module order) by ``nn.Identity``, in
    place; returns its input width, the feature width the network now outputs.

    >>> from trainlab.models import create_model
    >>> m = create_model("lenet5")
    >>> strip_head(m), m(torch.zeros(1, 1, 28, 28)).shape
    (84, torch.Size([1, 84]))
    """
    last = [(name, m) for name, m in net.named_modules() if isinstance(m, nn.Linear)]
    if not last:
        raise ConfigError(f"model.encoder: {type(net).__name__} has no nn.Linear head to remove")
    name, layer = last[-1]
    parent = net.get_submodule(name.rpartition(".")[0]) if "." in name else net
    setattr(parent, name.rpartition(".")[2], nn.Identity())
    return layer.in_features


class SimCLRNet(nn.Module):
    """encoder (N, C, H, W) → h (N, F) → Linear → BN → ReLU → Linear → z (N, projection_dim)."""

    def __init__(
        self, encoder: nn.Module, feature_dim: int, hidden_dim: int, projection_dim: int,
        in_channels: int, image_size: int,
    ) -> None:  # fmt: skip
        super().__init__()
        self.in_channels, self.image_size, self.feature_dim = in_channels, image_size, feature_dim
        self.encoder = encoder
        self.projector = nn.Sequential(
            nn.Linear(feature_dim, hidden_dim, bias=False),
            nn.BatchNorm1d(hidden_dim),
            nn.ReLU(inplace=True),
            nn.Linear(hidden_dim, projection_dim),
        )

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The representation h (N, feature_dim): what a probe or a fine-tuned head reads."""
        return self.encoder(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.projector(self.encode(x))  # (N, projection_dim)

    def example_input(self, batch: int = 2) -> tuple[torch.Tensor, ...]:
        return image_batch(batch, self.in_channels, self.image_size)


@register_model("simclr")
def simclr(
    *,
    encoder: str = "resnet_small",  # a registered image model; its last nn.Linear is removed
    encoder_options: dict[str, Any] = {},  # noqa: B006 - never mutated
    in_channels: int = 1,
    image_size: int = 28,  # side of the example input tools feed the model
    hidden_dim: int = 256,  # width of the projection head's hidden layer
    projection_dim: int = 64,  # size of the projections NT-Xent compares
) -> nn.Module:
    """SimCLR network: a zoo ``encoder`` (its classifier head removed) + a 2-layer projection
    head; ``model(x)`` → projections (N, projection_dim), ``model.encode(x)`` → features.

    ``encoder_options``: the encoder's own options (e.g. ``{widths: [16, 48, 96]}``);
    ``image_size``: the side of the example input tools feed the model.
    """
    if encoder == "simclr":
        raise ConfigError("model.encoder: 'simclr' cannot be its own encoder")
    from trainlab.registry import keyword_options

    opts = dict(encoder_options)
    if "in_channels" in keyword_options(MODELS.get(encoder, where="model.encoder")):
        opts.setdefault("in_channels", in_channels)
    try:
        net = create_model(encoder, **opts)
    except ConfigError as e:
        raise ConfigError(f"model.encoder_options: {e}") from None
    feature_dim = strip_head(net)
    return SimCLRNet(net, feature_dim, hidden_dim, projection_dim, in_channels, image_size)
