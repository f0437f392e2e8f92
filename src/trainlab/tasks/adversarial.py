"""The ``adversarial`` task: classification trained on attacked batches, the same as
``task: {name: classification, adversarial: {...}}`` (see ``trainlab.tasks.attacked``), kept
under its own name.
"""

from __future__ import annotations

from typing import Any

from trainlab.tasks.attacked import AdversarialOptions, data_box
from trainlab.tasks.base import register_task
from trainlab.tasks.classification import ClassificationTask

__all__ = ["AdversarialTask", "adversarial", "data_box"]


class AdversarialTask(ClassificationTask):
    """Classification trained on FGSM/PGD-perturbed batches (mixed with clean ones)."""

    def __init__(self, method: str, eps: float, steps: int, mix: float, **kw: Any) -> None:
        from pydantic import ValidationError

        from trainlab.errors import ConfigError

        try:
            opts = AdversarialOptions(method=method, eps=eps, steps=steps, mix=mix)  # type: ignore[arg-type]
        except ValidationError as e:
            err = e.errors()[0]  # e.g. eps: "Input should be less than or equal to 1"
            raise ConfigError(f"task.{err['loc'][0]}: {err['msg']} (got {err['input']!r}; eps "
                              "is a fraction of the data's value range)") from None  # fmt: skip
        super().__init__(adversarial=opts, **kw)


@register_task("adversarial")
def adversarial(
    *,
    method: str = "pgd",
    eps: float = 0.1,
    steps: int = 5,
    mix: float = 0.5,
    label_smoothing: float = 0.0,
    tta: str | None = None,
) -> AdversarialTask:
    """Classification trained against an L∞ ``method`` attack (``fgsm``/``pgd``) of size
    ``eps`` (a fraction of the data's value range), ``mix`` the adversarial loss's weight;
    the same as ``classification`` with ``adversarial: {method, eps, steps, mix}``.

    >>> # task: {name: adversarial, method: pgd, eps: 0.1, steps: 5}
    """
    return AdversarialTask(method, eps, steps, mix, label_smoothing=label_smoothing, tta=tta)
