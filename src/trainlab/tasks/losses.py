"""Loss functions by name: built-in ``cross_entropy``, ``bce``, ``mse``, ``l1``, ``huber``, and
any loss registered with :func:`register_loss` (``task.loss: focal`` in a recipe).

A registered loss is a function ``loss(pred, target, *, option=default) -> scalar tensor`` or an
``nn.Module`` class whose ``__init__`` takes the options (``task.loss_options`` in the recipe)
and whose ``forward(pred, target)`` returns the loss. It receives the model's output as is
(classification: logits (N, K) and integer labels (N,)).

>>> import torch
>>> @register_loss("abs_error")               # doctest: +SKIP
... def abs_error(pred, target, *, scale: float = 1.0):
...     return scale * (pred.squeeze(-1) - target).abs().mean()
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

from trainlab.config.validate import validate_options
from trainlab.errors import ConfigError
from trainlab.registry import Registry, keyword_options

__all__ = ["LOSSES", "BUILTIN_KINDS", "get_loss", "register_loss", "losses_for"]

LossFn = Callable[[torch.Tensor, torch.Tensor, float], torch.Tensor]

LOSSES: Registry[Callable[..., Any]] = Registry(
    "loss",
    supplied=2,
    class_supplied=0,
    expected="def my_loss(pred, target, *, option: type = default) -> Tensor, or an nn.Module "
    "class whose __init__ takes the options by name and whose forward(pred, target) returns "
    "the loss",
)
# What each built-in loss is for; a registered loss may be used by any task that takes one.
BUILTIN_KINDS = {
    "cross_entropy": "classification", "bce": "classification",
    "mse": "regression", "l1": "regression", "huber": "regression",
}  # fmt: skip


def register_loss(name: str) -> Callable[[Any], Any]:
    """Register a loss function or ``nn.Module`` class under ``name`` (``task.loss: name``)."""
    return LOSSES.register(name)


@register_loss("cross_entropy")
def cross_entropy(
    logits: torch.Tensor, target: torch.Tensor, *, label_smoothing: float = 0.0
) -> torch.Tensor:
    """Softmax cross-entropy of logits (N, K) against labels (N,)."""
    return F.cross_entropy(logits, target, label_smoothing=label_smoothing)


@register_loss("bce")
def bce(
    logits: torch.Tensor, target: torch.Tensor, *, label_smoothing: float = 0.0
) -> torch.Tensor:
    """One-vs-rest binary cross-entropy with logits; integer labels become one-hot."""
    if target.dtype in (torch.int64, torch.int32) and logits.dim() == target.dim() + 1:
        target = F.one_hot(target, logits.shape[-1]).to(logits.dtype)
    target = target.to(logits.dtype)
    if label_smoothing:
        target = target * (1 - label_smoothing) + 0.5 * label_smoothing
    return F.binary_cross_entropy_with_logits(logits, target)


def _regression(fn: Callable[..., torch.Tensor], doc: str) -> Callable[..., torch.Tensor]:
    def loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if pred.dim() == target.dim() + 1 and pred.shape[-1] == 1:
            pred = pred.squeeze(-1)  # (N, 1) prediction against (N,) targets
        return fn(pred, target.to(pred.dtype))

    loss.__doc__ = doc
    return loss


register_loss("mse")(_regression(F.mse_loss, "Mean squared error."))
register_loss("l1")(_regression(F.l1_loss, "Mean absolute error."))
register_loss("huber")(_regression(F.huber_loss, "Huber loss (delta 1)."))


def losses_for(kind: str) -> list[str]:
    """Loss names a task of ``kind`` accepts: its built-in ones and every registered one."""
    return sorted(n for n in LOSSES.names() if BUILTIN_KINDS.get(n, kind) == kind)


def get_loss(
    name: str,
    where: str = "task.loss",
    options: dict[str, Any] | None = None,
    kind: str | None = None,
) -> LossFn:
    """The loss ``name`` as ``fn(pred, target, label_smoothing)``; ``options`` are checked
    against its signature, ``kind`` (classification, regression) refuses another kind's
    built-in loss."""
    entry = LOSSES.get(name, where=where)
    if kind is not None and BUILTIN_KINDS.get(name, kind) != kind:
        valid = ", ".join(losses_for(kind))
        raise ConfigError(f"{where}: '{name}' is not a {kind} loss; valid: {valid}")
    opts = validate_options(entry, options or {}, where=f"{where}_options", entry=f"loss '{name}'")
    fn = entry(**opts) if inspect.isclass(entry) else functools.partial(entry, **opts)
    smooths = (
        not inspect.isclass(entry)
        and "label_smoothing" in keyword_options(entry)
        and "label_smoothing" not in opts
    )

    def loss(pred: torch.Tensor, target: torch.Tensor, smoothing: float) -> torch.Tensor:
        if smooths:
            return fn(pred, target, label_smoothing=smoothing)
        return fn(pred, target)

    loss.smooths = smooths  # type: ignore[attr-defined]
    return loss
