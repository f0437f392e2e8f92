"""Gradient (activation) checkpointing: keep block inputs, recompute block activations in
backward. Memory for activations drops from the sum over blocks to one block's worth plus the
block inputs, for one extra forward pass of compute (~30 % more time per step).

A model supports it by running its blocks through :func:`run_blocks` with its
``grad_checkpointing`` flag, and by carrying the :func:`checkpointable` class decorator;
``set_grad_checkpointing(model)`` (``train.grad_checkpointing: true``) switches it on.
"""

from __future__ import annotations

from collections.abc import Iterable
from contextlib import nullcontext
from typing import Any, TypeVar

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm
from torch.utils.checkpoint import checkpoint

from trainlab.errors import ConfigError

__all__ = ["checkpointable", "run_blocks", "set_grad_checkpointing", "CHECKPOINTABLE"]

CHECKPOINTABLE: list[str] = []  # class names of the models that support checkpointing
M = TypeVar("M", bound=type)


def checkpointable(cls: M) -> M:
    """Class decorator: the model has a ``grad_checkpointing`` flag its forward honours."""
    CHECKPOINTABLE.append(cls.__name__)
    return cls


class _KeepNormStats:
    """Entered around the recomputation in backward: batch-norm layers must not update their
    running statistics a second time for the same batch (the first forward already did), or
    checkpointing would change what the model learns."""

    def __init__(self, block: nn.Module) -> None:
        self.buffers = [
            b
            for m in block.modules()
            if isinstance(m, _BatchNorm)
            for b in (m.running_mean, m.running_var, m.num_batches_tracked)
            if b is not None
        ]
        self.saved: list[torch.Tensor] = []

    def __enter__(self) -> None:
        self.saved = [b.clone() for b in self.buffers]

    def __exit__(self, *exc: Any) -> None:
        with torch.no_grad():
            for b, s in zip(self.buffers, self.saved):
                b.copy_(s)


def run_blocks(
    blocks: Iterable[nn.Module],
    x: torch.Tensor,
    enabled: bool,
    *args: Any,
    only: tuple[type[nn.Module], ...] = (nn.Module,),
) -> torch.Tensor:
    """``x = block(x, *args)`` for each block; with ``enabled`` (and autograd recording) the
    activations of each block of a type in ``only`` are recomputed in backward instead of kept.
    Dropout masks are the same in the recomputation (the RNG state is replayed), so gradients
    equal the plain ones. ``only`` keeps out layers that modify their input in place (a
    ``ReLU(inplace=True)`` would overwrite the input saved for the recomputation)."""
    for block in blocks:
        if enabled and torch.is_grad_enabled() and isinstance(block, only):
            x = checkpoint(
                block,
                x,
                *args,
                use_reentrant=False,
                context_fn=lambda b=block: (nullcontext(), _KeepNormStats(b)),
            )
        else:
            x = block(x, *args)
    return x


def set_grad_checkpointing(model: nn.Module, enable: bool = True, *, where: str = "model") -> None:
    """Switch gradient checkpointing on (or off) for ``model``; a clear error if it has none.

    >>> model = create_model("resnet18", num_classes=10)   # doctest: +SKIP
    >>> set_grad_checkpointing(model)                       # doctest: +SKIP
    """
    if not hasattr(model, "grad_checkpointing"):
        supported = ", ".join(sorted(CHECKPOINTABLE))
        raise ConfigError(
            f"{where}: {type(model).__name__} does not support gradient checkpointing "
            f"(models that do: {supported})"
        )
    model.grad_checkpointing = enable
