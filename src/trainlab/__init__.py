"""trainlab: a deep-learning workbench for PyTorch.

>>> import trainlab
>>> model = trainlab.create_model("lenet5", num_classes=10)
>>> "resnet_small" in trainlab.list_models()
True
"""

from trainlab import callbacks, data, models, optim, tasks  # noqa: F401 - fill the registries
from trainlab.callbacks import EarlyStopping, ModelCheckpoint, ProgressBar, register_callback
from trainlab.config.load import load_config, parse_config
from trainlab.config.schema import Config
from trainlab.data import Augment, TensorLoader, register_data
from trainlab.doctor import doctor  # the function (the package stays importable)
from trainlab.errors import CheckpointError, ConfigError, DataError, TrainlabError
from trainlab.experiment import build_data, build_experiment, seed_everything
from trainlab.loading import load_model
from trainlab.metrics.registry import register_metric
from trainlab.models import create_model, list_models, register_model
from trainlab.optim import build_optimizer, build_scheduler
from trainlab.plugins import import_plugin
from trainlab.run import evaluate_run, train_run
from trainlab.studies.batch_size import find_batch_size
from trainlab.studies.cv import cross_validate
from trainlab.studies.lr_find import lr_find
from trainlab.studies.sweep import sweep
from trainlab.studies.tune import tune
from trainlab.tasks import register_task
from trainlab.tasks.losses import register_loss
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
    "cross_validate",
    "doctor",
    "evaluate_run",
    "find_batch_size",
    "import_plugin",
    "list_models",
    "load_config",
    "load_model",
    "lr_find",
    "parse_config",
    "register_callback",
    "register_data",
    "register_loss",
    "register_metric",
    "register_model",
    "register_task",
    "seed_everything",
    "sweep",
    "train_run",
    "tune",
]

__version__ = "0.1.0"

# A worker started by a trainlab command (sweep, tune, cv, torchrun) loads the plug-ins that
# command loaded (--import, entry points); nothing happens in any other process.
from trainlab.plugins import load_inherited as _load_inherited  # noqa: E402

_load_inherited()
