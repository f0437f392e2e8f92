"""Knowledge distillation (Hinton et al., 2015): a student learns from a trained teacher's
softened class probabilities as well as from the labels.

    loss = α · T² · KL(softmax(t / T) ‖ softmax(s / T)) + (1 − α) · CE(s, y)

``t``/``s`` are the teacher's and the student's logits; the T² factor keeps the soft term's
gradients on the scale of the hard one's as the temperature T grows. The teacher is a run
directory (its best weights), in inference mode without gradients; it sees exactly the student's
training batch. When the training data is not augmented (no ``data.augment`` / ``transforms``
randomness) every sample looks the same in every epoch, so the teacher's logits are cached per
sample (keyed by a hash of its values) and the teacher runs in the first epoch only
(``cache_teacher``, CPU batches). Evaluation is the student's alone.
"""

from __future__ import annotations

import hashlib
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from trainlab.data.base import Batch, DataModule
from trainlab.errors import ConfigError
from trainlab.tasks.base import StepOutput, register_task
from trainlab.tasks.classification import ClassificationTask

__all__ = ["DistillationTask", "distillation", "distill_loss"]


def distill_loss(student: torch.Tensor, teacher: torch.Tensor, temperature: float) -> torch.Tensor:
    """T² · KL(teacher ‖ student) of the temperature-softened distributions, per sample.

    >>> z = torch.randn(4, 10)
    >>> float(distill_loss(z, z, 4.0))
    0.0
    """
    t = temperature
    log_s = F.log_softmax(student.float() / t, dim=-1)
    log_t = F.log_softmax(teacher.float() / t, dim=-1)
    return F.kl_div(log_s, log_t, log_target=True, reduction="batchmean") * (t * t)


class DistillationTask(ClassificationTask):
    """Classification whose training loss mixes the teacher's soft targets with the labels."""

    def __init__(self, teacher: str, temperature: float, alpha: float, cache_teacher: bool = True,
                 **kw: Any) -> None:  # fmt: skip
        super().__init__(**kw)
        self.cache_teacher = cache_teacher
        self.cache: dict[bytes, torch.Tensor] | None = None  # set by check_data when allowed
        self.teacher_rows = 0  # samples the teacher has run on
        if temperature <= 0 or not 0.0 <= alpha <= 1.0:
            raise ConfigError("task.temperature must be > 0 and task.alpha within [0, 1]")
        if self.mixup_alpha or self.cutmix_alpha:
            raise ConfigError("task: distillation does not combine with mixup/cutmix")
        from trainlab.deploy.source import load_model_only

        try:
            self.teacher, tcfg = load_model_only(teacher)
        except ConfigError:
            raise
        except Exception as e:  # CheckpointError and friends: name the option
            raise ConfigError(f"task.teacher={teacher}: {e}") from None
        self.teacher_dir, self.temperature, self.alpha = teacher, temperature, alpha
        self.teacher_classes = _run_classes(teacher)
        self.teacher_data = tcfg.data.name
        k = tcfg.model.options().get("num_classes")
        self.teacher_k: int | None = k if isinstance(k, int) else None

    def check_data(self, data: DataModule) -> None:
        """The teacher must predict the student's classes, in the same order, from the
        student's inputs."""
        super().check_data(data)
        names = [str(c) for c in getattr(data, "classes", None) or []]
        k = self.teacher_k if self.teacher_k is not None else self._probe(data)
        if k != data.num_classes or (self.teacher_classes and names
                                     and self.teacher_classes != names):  # fmt: skip
            theirs = ", ".join(self.teacher_classes) or f"{k} classes"
            raise ConfigError(
                f"task.teacher={self.teacher_dir}: the teacher's classes ({theirs}) differ from "
                f"the data's ({', '.join(names) or f'{data.num_classes} classes'})"
            )
        self._probe(data)  # and it takes the student's inputs
        if self.cache_teacher and not _augmented(data):
            self.cache = {}

    def _probe(self, data: DataModule) -> int:
        try:
            with torch.no_grad():
                x = torch.zeros(2, *data.input_shape, dtype=_dtype(data))
                return int(self.teacher(x).shape[-1])
        except Exception as e:  # any shape or dtype error: the inputs do not fit
            first = (str(e).strip().splitlines() or [type(e).__name__])[0][:160]
            raise ConfigError(f"task.teacher={self.teacher_dir}: the teacher cannot take this "
                              f"data's inputs {tuple(data.input_shape)} ({first})") from None

    def train_step(self, model: nn.Module, batch: Batch) -> StepOutput:
        x, y = batch
        if next(self.teacher.parameters()).device != x.device:
            self.teacher.to(x.device)
        t_logits = self._teacher_logits(x)
        s_logits = model(x)  # (N, K)
        soft = distill_loss(s_logits, t_logits, self.temperature)
        hard = self.loss_fn(s_logits, y, self.label_smoothing)
        loss = self.alpha * soft + (1 - self.alpha) * hard
        return StepOutput(loss, s_logits.detach(), y,
                          extras={"soft_loss": soft.detach(), "hard_loss": hard.detach()})


    def _teacher_logits(self, x: torch.Tensor) -> torch.Tensor:
        """The teacher's (N, K) logits: from the per-sample cache where it has them all."""
        if self.cache is None or x.device.type != "cpu":  # hashing would sync a GPU batch
            return self._run_teacher(x)
        rows = x.reshape(len(x), -1).numpy()
        keys = [hashlib.blake2b(r.tobytes(), digest_size=16).digest() for r in rows]
        miss = [i for i, k in enumerate(keys) if k not in self.cache]
        if miss:  # only the samples not seen yet (eval-mode teacher: per-sample outputs)
            fresh = self._run_teacher(x[miss])
            self.cache.update(zip([keys[i] for i in miss], fresh.unbind(0)))
        return torch.stack([self.cache[k] for k in keys])

    def _run_teacher(self, x: torch.Tensor) -> torch.Tensor:
        self.teacher_rows += len(x)
        with torch.no_grad():
            return self.teacher(x).float()


def _augmented(data: DataModule) -> bool:
    """Whether training batches change from epoch to epoch (random augmentation)."""
    aug = getattr(data, "augment", None)
    if aug is not None and (aug.flip or aug.translate or aug.cutout):
        return True
    tf = getattr(data, "transforms", None)  # image folders: torchvision's random transforms
    return tf is not None and bool(tf.crop or tf.flip or tf.rotation or tf.color_jitter
                                   or tf.random_erasing)  # fmt: skip


def _dtype(data: DataModule) -> torch.dtype:
    # Text models take token ids; everything else float inputs.
    return torch.long if getattr(data, "vocab", None) is not None else torch.float32


def _run_classes(run_dir: str) -> list[str]:
    import json
    from pathlib import Path

    for name in ("eval_test.json", "data.json"):
        p = Path(run_dir) / name
        if p.is_file():
            classes = json.loads(p.read_text()).get("classes")
            if classes:
                return [str(c) for c in classes]
    return []


@register_task("distillation")
def distillation(
    *,
    teacher: str,
    temperature: float = 4.0,
    alpha: float = 0.9,
    label_smoothing: float = 0.0,
    tta: str | None = None,
    cache_teacher: bool = True,
) -> DistillationTask:
    """Train a classifier on a teacher run's soft targets (``teacher: RUN_DIR``) and the
    labels: ``alpha`` weighs the soft term (scaled by temperature²), ``1 - alpha`` the
    cross-entropy; ``cache_teacher`` keeps the teacher's logits per sample when the training
    data is not augmented (the teacher then runs in the first epoch only).

    >>> # task: {name: distillation, teacher: runs/fmnist-resnet, temperature: 4, alpha: 0.9}
    """
    return DistillationTask(teacher, temperature, alpha, cache_teacher,
                            label_smoothing=label_smoothing, tta=tta)
