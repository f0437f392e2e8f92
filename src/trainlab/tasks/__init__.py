"""Tasks: one kind of objective each (train_step / eval_step / metrics)."""

from trainlab.tasks import classification  # noqa: F401 - registers the tasks
from trainlab.tasks.base import TASKS, StepOutput, Task, register_task
from trainlab.tasks.losses import LOSSES, get_loss

__all__ = ["LOSSES", "TASKS", "StepOutput", "Task", "get_loss", "register_task"]
