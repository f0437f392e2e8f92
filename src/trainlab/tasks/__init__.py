"""Tasks: one kind of objective each (train_step / eval_step / metrics)."""

from trainlab.tasks import (  # noqa: F401 - importing a task module registers its tasks
    adversarial,
    adversarial_autoencoding,
    autoencoding,
    capsule,
    classification,
    contrastive_divergence,
    cyclegan,
    denoising,
    diffusion,
    distillation,
    dqn,
    forecasting,
    gan,
    language_model,
    metric_learning,
    node_classification,
    reinforce,
    sample_grid,
    seq2seq,
    simclr,
    translation_grid,
)
from trainlab.tasks.base import TASKS, StepOutput, Task, register_task
from trainlab.tasks.losses import LOSSES, get_loss

__all__ = ["LOSSES", "TASKS", "StepOutput", "Task", "get_loss", "register_task"]
