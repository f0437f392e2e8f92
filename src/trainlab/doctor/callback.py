"""The ``doctor`` callback: warns during training as soon as one of its rules fires.

Add it to a recipe (``callbacks: [{name: doctor}]``). Each rule warns once, as a
:class:`DoctorWarning` (so the warning lands in the run's ``warnings.json`` and report):

- the training loss is non-finite, or climbed far above its minimum (divergence);
- the total gradient norm jumped ``explode`` × above its running median (exploding gradients),
  or the first layer's relative gradient is below 1e-3 × the last layer's (vanishing);
- validation loss has not improved for ``patience`` epochs (plateau);
- validation loss rose 15 % above its minimum while the training loss kept falling
  (overfitting).

Gradients are read through :class:`~trainlab.tracking.grads.StepGrads` every ``every`` steps
only; the loop itself is never steered.

>>> cb = DoctorCallback(patience=3)
"""

from __future__ import annotations

import math
import statistics
import warnings
from typing import Any

from trainlab.callbacks.base import register_callback
from trainlab.tracking.grads import StepGrads

__all__ = ["DoctorCallback", "DoctorWarning"]


class DoctorWarning(UserWarning):
    """A doctor rule fired during training."""


@register_callback("doctor")
class DoctorCallback:
    """Warn as soon as a divergence, gradient, plateau or overfitting rule fires."""

    def __init__(
        self, *, patience: int = 5, every: int = 50, explode: float = 10.0, vanish: float = 1e-3
    ) -> None:
        self.patience, self.every, self.explode, self.vanish = patience, every, explode, vanish
        self.fired: dict[str, str] = {}  # rule → message (each rule warns once)
        self.grads = StepGrads(every)
        self.norms: list[float] = []
        self.low_ratio = 0
        self.min_loss = math.inf
        self.val: list[float] = []
        self.train: list[float] = []

    def warn(self, rule: str, message: str) -> None:
        if rule in self.fired:
            return
        self.fired[rule] = message
        warnings.warn(f"doctor: {message}", DoctorWarning, stacklevel=2)

    def on_fit_start(self, state: Any) -> None:
        self.grads.start(state.model, state.step)

    def on_batch_end(self, state: Any) -> None:
        if state.step % self.every == 0:
            self._check_grads(state)
        self.grads.advance(state.model, state.step)

    def _check_grads(self, state: Any) -> None:
        total, rel = 0.0, []
        for name, p in state.model.named_parameters():
            g = self.grads.grad(name, p)
            if g is None:
                continue
            n = float(g.detach().float().norm())
            total += n * n
            if p.dim() >= 2 and float(p.detach().float().norm()) > 0:
                rel.append(n / float(p.detach().float().norm()))
        total = math.sqrt(total)
        if not math.isfinite(total):
            self.warn("gradients", f"non-finite gradient norm at step {state.step}")
            return
        if len(self.norms) >= 3 and total > self.explode * statistics.median(self.norms):
            self.warn("exploding", f"gradient norm {total:.3g} at step {state.step} is "
                      f"{total / statistics.median(self.norms):.0f}× its running median: "
                      "try train.grad_clip=1.0 or a lower LR")  # fmt: skip
        self.norms.append(total)
        if len(rel) >= 2 and rel[-1] > 0:
            self.low_ratio = self.low_ratio + 1 if rel[0] / rel[-1] < self.vanish else 0
            if self.low_ratio >= 3:
                self.warn("vanishing", f"the first layer's relative gradient is "
                          f"{rel[0] / rel[-1]:.1e} × the last layer's (3 checks in a row): "
                          "vanishing gradients; try model.act=relu or normalisation")  # fmt: skip

    def on_log(self, state: Any, values: dict[str, Any]) -> None:
        loss = values.get("train/loss")
        if not isinstance(loss, (int, float)):
            return
        if not math.isfinite(loss):
            self.warn("diverged", f"training loss is {loss} at step {state.step}: lower the "
                      "LR, or set train.grad_clip=1.0")  # fmt: skip
            return
        if loss > 3 * self.min_loss + 1:
            self.warn(
                "diverged",
                f"training loss {loss:.3g} at step {state.step} climbed far "
                f"above its minimum {self.min_loss:.3g}: the LR is probably too high",
            )
        self.min_loss = min(self.min_loss, float(loss))

    def on_validation_end(self, state: Any) -> None:
        val, train = state.metrics.get("val/loss"), state.metrics.get("train/loss_epoch")
        if not isinstance(val, (int, float)) or not math.isfinite(val):
            return
        self.val.append(float(val))
        if isinstance(train, (int, float)):
            self.train.append(float(train))
        best = min(range(len(self.val)), key=self.val.__getitem__)
        if len(self.val) - 1 - best >= self.patience:
            self.warn("plateau", f"val/loss has not improved for {self.patience} epochs "
                      f"(best {self.val[best]:.4g} at epoch {best + 1})")  # fmt: skip
        rising = self.val[-1] > 1.15 * self.val[best] and best < len(self.val) - 1
        if rising and len(self.train) == len(self.val) and self.train[-1] < self.train[best]:
            self.warn(
                "overfitting",
                f"val/loss {self.val[-1]:.4g} is "
                f"{self.val[-1] / self.val[best] - 1:.0%} above its minimum (epoch "
                f"{best + 1}) while the training loss keeps falling: overfitting",
            )

    def on_fit_end(self, state: Any) -> None:
        self.grads.close()

    def on_exception(self, state: Any, exc: BaseException | None = None) -> None:
        self.grads.close()
