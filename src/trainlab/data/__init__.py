"""Data: sources registered by name; each builds a data module with loaders for its splits."""

from trainlab.data import fashion_mnist, synthetic  # noqa: F401 - registers the sources
from trainlab.data.augment import Augment
from trainlab.data.base import DATA, Batch, DataModule, Loader, register_data
from trainlab.data.memory import TensorDataModule, TensorLoader

__all__ = [
    "DATA", "Augment", "Batch", "DataModule", "Loader", "TensorDataModule", "TensorLoader",
    "register_data",
]  # fmt: skip
