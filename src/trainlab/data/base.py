"""The data contract every source implements, and the data registry.

A *data module* is built from the recipe's ``data`` section, loads (or generates) its splits in
``setup()``, and hands out loaders. A loader yields ``(x, y)`` batches already on the training
device; ``iter_epoch(epoch, start)`` makes each epoch a pure function of (seed, epoch), so a run
resumed at batch ``start`` sees exactly the batches an uninterrupted run would have seen.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Protocol, runtime_checkable

import torch

from trainlab.registry import Registry

__all__ = ["DATA", "register_data", "DataModule", "Loader", "Batch"]

Batch = tuple[torch.Tensor, torch.Tensor]


@runtime_checkable
class Loader(Protocol):
    """Batches of one split. ``len(loader)`` is the number of batches per epoch."""

    def __len__(self) -> int: ...

    def iter_epoch(self, epoch: int, start: int = 0) -> Iterator[Batch]: ...


@runtime_checkable
class DataModule(Protocol):
    """What the trainer and the CLI need from a data source.

    Attributes are valid after ``setup()``: ``num_classes`` (None for regression),
    ``input_shape`` (one sample, e.g. ``(1, 28, 28)``), ``sizes`` (samples per split).
    """

    num_classes: int | None
    input_shape: tuple[int, ...]
    sizes: dict[str, int]

    def setup(self, device: torch.device) -> None: ...

    def loader(self, split: str) -> Loader: ...

    def describe(self) -> dict[str, Any]: ...


DATA: Registry[Callable[..., DataModule]] = Registry(
    "data", expected="def my_data(*, batch_size: int = 64, seed: int = 0) -> DataModule, or a "
    "DataModule class whose __init__ takes its options by name",
)


def register_data(name: str) -> Callable[[Callable[..., DataModule]], Callable[..., DataModule]]:
    """Register a data module builder; its keyword-only arguments are the recipe's options."""
    return DATA.register(name)
