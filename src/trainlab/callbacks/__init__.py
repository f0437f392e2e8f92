"""Callbacks: objects with ``on_*`` methods; those usable from recipes are registered."""

from trainlab.callbacks.base import CALLBACKS, register_callback
from trainlab.callbacks.checkpoint import ModelCheckpoint
from trainlab.callbacks.early_stopping import EarlyStopping
from trainlab.callbacks.keep_zeros import KeepZeros
from trainlab.callbacks.progress import ProgressBar
from trainlab.callbacks.weight_monitor import WeightMonitor

__all__ = [
    "CALLBACKS",
    "EarlyStopping",
    "KeepZeros",
    "ModelCheckpoint",
    "ProgressBar",
    "WeightMonitor",
    "register_callback",
]
