"""Data: sources registered by name; each builds a data module with loaders for its splits."""

# Importing a source module registers it in DATA.
from trainlab.data import (  # noqa: F401
    cifar10,
    csv_table,
    environments,
    fashion_mnist,
    folds,
    graph_csv,
    graphs,
    images,
    sequences,
    sklearn_sets,
    synthetic,
    text,
    unpaired,
)
from trainlab.data.augment import Augment
from trainlab.data.base import DATA, Batch, DataModule, Loader, register_data
from trainlab.data.collate import BucketBatchSampler, PaddedBatch, pad_collate
from trainlab.data.datasets import DatasetModule, from_datasets
from trainlab.data.fast import FastTensorLoader
from trainlab.data.memory import TensorDataModule, TensorLoader
from trainlab.data.splits import (
    holdout_split,
    kfold_indices,
    stratified_kfold_indices,
    weighted_sampler,
)

__all__ = [
    "DATA", "Augment", "Batch", "DataModule", "Loader", "TensorDataModule", "TensorLoader",
    "register_data", "FastTensorLoader", "BucketBatchSampler", "PaddedBatch", "pad_collate",
    "holdout_split", "kfold_indices", "stratified_kfold_indices", "weighted_sampler",
    "DatasetModule", "from_datasets",
]  # fmt: skip
