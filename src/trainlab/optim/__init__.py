"""Optimizers and learning-rate schedules, registered by name."""

from trainlab.optim.optimizers import OPTIMIZERS, build_optimizer, param_groups
from trainlab.optim.schedulers import SCHEDULERS, Schedule, build_scheduler

__all__ = [
    "OPTIMIZERS",
    "SCHEDULERS",
    "Schedule",
    "build_optimizer",
    "build_scheduler",
    "param_groups",
]
