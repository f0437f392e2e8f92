"""Run directories and metric writers."""

from trainlab.tracking.jsonl import JsonlLogger, read_metrics
from trainlab.tracking.rundir import create_run_dir, env_info, write_json
from trainlab.tracking.tensorboard import TensorBoardLogger

__all__ = [
    "JsonlLogger",
    "TensorBoardLogger",
    "create_run_dir",
    "env_info",
    "read_metrics",
    "write_json",
]
