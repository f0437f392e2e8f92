"""Loss functions by name: ``cross_entropy``, ``bce``, ``mse``, ``l1``, ``huber``."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from trainlab.errors import ConfigError
from trainlab.registry import did_you_mean

__all__ = ["LOSSES", "get_loss"]

LossFn = Callable[[torch.Tensor, torch.Tensor, float], torch.Tensor]


def _bce(logits: torch.Tensor, target: torch.Tensor, smoothing: float) -> torch.Tensor:
    # Integer class targets become one-hot: one-vs-rest binary cross-entropy per class.
    if target.dtype in (torch.int64, torch.int32) and logits.dim() == target.dim() + 1:
        target = F.one_hot(target, logits.shape[-1]).to(logits.dtype)
    target = target.to(logits.dtype)
    if smoothing:
        target = target * (1 - smoothing) + 0.5 * smoothing
    return F.binary_cross_entropy_with_logits(logits, target)


def _reg(fn: Callable[..., torch.Tensor]) -> LossFn:
    def loss(pred: torch.Tensor, target: torch.Tensor, _smoothing: float) -> torch.Tensor:
        if pred.dim() == target.dim() + 1 and pred.shape[-1] == 1:
            pred = pred.squeeze(-1)  # (N, 1) prediction against (N,) targets
        return fn(pred, target.to(pred.dtype))

    return loss


LOSSES: dict[str, LossFn] = {
    "cross_entropy": lambda logits, y, s: F.cross_entropy(logits, y, label_smoothing=s),
    "bce": _bce,
    "mse": _reg(F.mse_loss),
    "l1": _reg(F.l1_loss),
    "huber": _reg(F.huber_loss),
}


def get_loss(name: str, where: str = "task.loss") -> LossFn:
    try:
        return LOSSES[name]
    except KeyError:
        names = sorted(LOSSES)
        raise ConfigError(
            f"{where}: unknown loss '{name}'{did_you_mean(name, names)}; valid: {', '.join(names)}"
        ) from None
