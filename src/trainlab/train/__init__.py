"""The training loop, its state, events, precision handling and checkpoints."""

from trainlab.train.state import TrainState
from trainlab.train.trainer import Trainer

__all__ = ["TrainState", "Trainer"]
