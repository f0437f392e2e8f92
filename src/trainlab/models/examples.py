"""Example inputs: what each model's ``forward`` takes, so tools can run any registered model.

The convention: a model class defines ``example_input(batch) -> tuple[Tensor, ...]`` returning the
positional arguments of one forward call (``model(*model.example_input(2))``). Models written
before the convention get a factory in :data:`EXAMPLE_INPUTS`, keyed by registry name.
:func:`example_input` looks at the method first, then the table. Used by the zoo test and by
study tools (analyze: FLOPs, memory, throughput).

>>> from trainlab.models import create_model, example_input
>>> m = create_model("lenet5")
>>> m(*example_input(m, batch=4, name="lenet5")).shape
torch.Size([4, 10])
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

__all__ = ["EXAMPLE_INPUTS", "example_input", "image_batch", "token_batch"]

ExampleFactory = Callable[[nn.Module, int], tuple[torch.Tensor, ...]]


def image_batch(batch: int, channels: int, size: int) -> tuple[torch.Tensor]:
    """One (N, C, H, W) float batch, values roughly like normalised images."""
    return (torch.randn(batch, channels, size, size),)


def token_batch(batch: int, length: int, vocab: int, low: int = 1) -> torch.Tensor:
    """(N, T) int64 token ids in [low, vocab): id 0 is kept free for padding."""
    return torch.randint(low, vocab, (batch, length))


def _mlp(model: nn.Module, batch: int) -> tuple[torch.Tensor, ...]:
    first = next(m for m in model.modules() if isinstance(m, nn.Linear))
    return (torch.randn(batch, first.in_features),)


def _first_conv(model: nn.Module) -> nn.Conv2d:
    return next(m for m in model.modules() if isinstance(m, nn.Conv2d))


def _lenet(model: nn.Module, batch: int) -> tuple[torch.Tensor, ...]:
    conv = _first_conv(model)
    # LeNet pads its first conv by 2 exactly for 28×28 input; unpadded it expects 32×32.
    size = 28 if conv.padding[0] == 2 else 32
    return image_batch(batch, conv.in_channels, size)


def _resnet_small(model: nn.Module, batch: int) -> tuple[torch.Tensor, ...]:
    return image_batch(batch, _first_conv(model).in_channels, 28)


EXAMPLE_INPUTS: dict[str, ExampleFactory] = {
    "mlp": _mlp,
    "lenet5": _lenet,
    "resnet_small": _resnet_small,
}


def example_input(
    model: nn.Module, batch: int = 2, name: str | None = None
) -> tuple[torch.Tensor, ...]:
    """Positional arguments for one forward call of ``model`` with ``batch`` samples.

    Tensors are created on the CPU; move them to the model's device yourself.
    """
    method = getattr(model, "example_input", None)
    if callable(method):
        out = method(batch)
        return out if isinstance(out, tuple) else (out,)
    if name is not None and name in EXAMPLE_INPUTS:
        return EXAMPLE_INPUTS[name](model, batch)
    raise TypeError(
        f"{type(model).__name__} declares no example input: give it an example_input(batch) "
        "method or add a factory to trainlab.models.examples.EXAMPLE_INPUTS"
    )
