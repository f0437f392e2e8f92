"""trainlab: a deep-learning workbench for PyTorch.

>>> import trainlab
>>> model = trainlab.create_model("lenet5", num_classes=10)
>>> "resnet_small" in trainlab.list_models()
True
"""

import importlib
from typing import Any

# The public API is imported on first use (PEP 562): `trainlab --help` and other commands that
# need no model start without importing torch (~1.8 s). Importing any registry's module
# (trainlab.models, .data, .tasks, .callbacks) fills that registry with every built-in entry.
_EXPORTS = {
    "EarlyStopping": "trainlab.callbacks",
    "ModelCheckpoint": "trainlab.callbacks",
    "ProgressBar": "trainlab.callbacks",
    "register_callback": "trainlab.callbacks",
    "load_config": "trainlab.config.load",
    "parse_config": "trainlab.config.load",
    "Config": "trainlab.config.schema",
    "Augment": "trainlab.data",
    "TensorLoader": "trainlab.data",
    "register_data": "trainlab.data",
    "doctor": "trainlab.doctor",
    "CheckpointError": "trainlab.errors",
    "ConfigError": "trainlab.errors",
    "DataError": "trainlab.errors",
    "TrainlabError": "trainlab.errors",
    "build_data": "trainlab.experiment",
    "build_experiment": "trainlab.experiment",
    "seed_everything": "trainlab.experiment",
    "load_model": "trainlab.loading",
    "register_metric": "trainlab.metrics.registry",
    "create_model": "trainlab.models",
    "list_models": "trainlab.models",
    "register_model": "trainlab.models",
    "build_optimizer": "trainlab.optim",
    "build_scheduler": "trainlab.optim",
    "import_plugin": "trainlab.plugins",
    "evaluate_run": "trainlab.run",
    "train_run": "trainlab.run",
    "find_batch_size": "trainlab.studies.batch_size",
    "cross_validate": "trainlab.studies.cv",
    "lr_find": "trainlab.studies.lr_find",
    "sweep": "trainlab.studies.sweep",
    "tune": "trainlab.studies.tune",
    "register_task": "trainlab.tasks",
    "register_loss": "trainlab.tasks.losses",
    "TrainState": "trainlab.train.state",
    "Trainer": "trainlab.train.trainer",
}



_SUBPACKAGES = ("callbacks", "data", "models", "optim", "tasks")


def __getattr__(name: str) -> Any:
    if name in _SUBPACKAGES:
        return importlib.import_module(f"trainlab.{name}")
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'trainlab' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS) | set(_SUBPACKAGES))


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
