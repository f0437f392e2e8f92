"""trainlab: a deep-learning workbench for PyTorch.

>>> import trainlab
>>> model = trainlab.create_model("lenet5", num_classes=10)
>>> "resnet_small" in trainlab.list_models()
True
"""

from trainlab import callbacks, data, models, optim, tasks  # noqa: F401 - fill the registries
from trainlab.callbacks import EarlyStopping, ModelCheckpoint, ProgressBar
from trainlab.config.load import load_config, parse_config
from trainlab.config.schema import Config
from trainlab.data import Augment, TensorLoader, register_data
from trainlab.errors import CheckpointError, ConfigError, DataError, TrainlabError
from trainlab.experiment import build_data, build_experiment, seed_everything
from trainlab.models import create_model, list_models, register_model
from trainlab.optim import build_optimizer, build_scheduler
from trainlab.run import evaluate_run, train_run
from trainlab.studies.tune import tune
from trainlab.tasks import register_task
from trainlab.train.state import TrainState
from trainlab.train.trainer import Trainer

__all__ = [
    "Augment",
    "CheckpointError",
    "Config",
    "ConfigError",
    "DataError",
    "EarlyStopping",
    "ModelCheckpoint",
    "ProgressBar",
    "TensorLoader",
    "TrainState",
    "Trainer",
    "TrainlabError",
    "build_data",
    "build_experiment",
    "build_optimizer",
    "build_scheduler",
    "create_model",
    "evaluate_run",
    "list_models",
    "load_config",
    "parse_config",
    "register_data",
    "register_model",
    "register_task",
    "seed_everything",
    "train_run",
    "tune",
]

__version__ = "0.1.0"
