"""The rules that read a run's records (:class:`~trainlab.doctor.records.RunView`).

Each rule returns the findings it supports with the run's own figures as evidence. Thresholds
are module constants, named for what they mean.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from trainlab.doctor.findings import Finding, num

if TYPE_CHECKING:
    from trainlab.doctor.records import RunView

__all__ = ["RULES", "typical_lr"]

SPIKE = 3.0  # a logged loss this many times its recent median is a spike
NO_PROGRESS = 0.10  # train loss fell by less than this share of its start: no learning
OVERFIT_RISE = 0.15  # validation loss this far above its minimum, while train loss falls
GAP = 0.05  # train-validation accuracy gap that counts as a generalisation gap
UNDERFIT_ACC = 0.80  # final training accuracy below this, without gap, flat: underfitting
TYPICAL_LR = {"sgd": 0.05, "adam": 1e-3, "adamw": 1e-3, "rmsprop": 1e-3, "nadam": 1e-3}


def typical_lr(optim: str) -> float | None:
    """A learning rate that usually works for ``optim`` (SGD with momentum, Adam …)."""
    return TYPICAL_LR.get(optim)


def _lr_key(v: RunView) -> str:
    s = v.sched or {}
    return "sched.max_lr" if s.get("max_lr") is not None else "optim.lr"


def _warmup_fix(v: RunView) -> list[str]:
    s = v.sched
    if s is None or s.get("name") == "onecycle" or s.get("warmup_epochs"):
        return []
    return ["sched.warmup_epochs=1"]


def diverged(v: RunView) -> list[Finding]:
    """NaN/Inf loss, a run stopped for it, or a loss that climbed far above where it began."""
    stop = str(v.summary.get("stop_reason") or "")
    at = v.nan_steps[0] if v.nan_steps else None
    rising = None
    if v.loss and at is None and v.minimised:
        lo = v.loss[0]
        for step, loss in zip(v.steps, v.loss, strict=True):
            lo = min(lo, loss)
            if loss > 3 * lo + 1 and loss > v.loss[0]:
                rising = step
                break
    if at is None and rising is None and "non-finite" not in stop:
        return []
    where = at if at is not None else rising
    lr_at = _lr_at(v, where)
    lr = lr_at or v.lr
    fix = [f"{_lr_key(v)}={num(lr / 10)}"] if lr else []
    fix += ["train.grad_clip=1.0", *_warmup_fix(v)]
    nan = at is not None or "non-finite" in stop
    what = "became non-finite" if nan else "climbed far above its start"
    return [Finding(
        "run.diverged", "lr_too_high", "error", 0.95,
        f"the training loss {what}" + (f" at step {where}" if where is not None else ""),
        {"step": where, "lr_at_step": lr_at, "stop_reason": stop or None,
         "rollbacks": v.summary.get("rollbacks"), "loss_before": _before(v, where)},
        "updates too large for the loss surface (learning rate too high, no warm-up or "
        "clipping) make the loss overshoot until it overflows", fix,
    )]  # fmt: skip


def _lr_at(v: RunView, step: Any) -> float | None:
    if step is None:
        return None
    lrs = [(r["step"], r["lr"]) for r in v.run.records if isinstance(r.get("lr"), (int, float))
           and isinstance(r.get("step"), int) and r["step"] <= step]  # fmt: skip
    return float(lrs[-1][1]) if lrs else None


def _before(v: RunView, step: Any) -> list[float]:
    return [loss for s, loss in zip(v.steps, v.loss, strict=True) if step is None or s < step][-5:]


def spikes(v: RunView) -> list[Finding]:
    """Sudden jumps of the logged training loss (without divergence)."""
    if len(v.loss) < 8 or v.nan_steps or not v.minimised:
        return []
    found = []
    for i in range(5, len(v.loss)):
        ref = statistics.median(v.loss[i - 5 : i])
        if v.loss[i] > SPIKE * ref and v.loss[i] - ref > 0.1:
            found.append((v.steps[i], v.loss[i], ref))
    if not found:
        return []
    lr = v.lr
    return [Finding(
        "run.loss_spikes", "loss_spikes", "warning" if len(found) >= 3 else "info",
        0.5 + 0.05 * min(len(found), 6), f"{len(found)} loss spike(s), the first at step "
        f"{found[0][0]} ({found[0][2]:.3g} → {found[0][1]:.3g})",
        {"spikes": [{"step": s, "loss": a, "median_before": b} for s, a, b in found[:10]]},
        "occasional huge gradients (a learning rate near the edge of stability, no clipping, "
        "outliers in the data)",
        ["train.grad_clip=1.0", *_warmup_fix(v)] + ([f"{_lr_key(v)}={num(lr / 3)}"] if lr else []),
    )]  # fmt: skip


def _weight_change(v: RunView) -> float | None:
    """Largest relative change of a layer's weight norm between the first and last record."""
    if len(v.norms) < 2:
        return None
    a, b = v.norms[0].get("weight", {}), v.norms[-1].get("weight", {})
    changes = [abs(b[k] - a[k]) / a[k] for k in a if k in b and a[k]]
    return max(changes) if changes else None


def no_learning(v: RunView) -> list[Finding]:
    """The training loss barely moved (LR too low, or stuck), or it moved while validation
    stayed at chance (no signal in the labels)."""
    if len(v.loss) < 4 or v.nan_steps or not v.minimised:
        return []
    first, best = statistics.mean(v.loss[:2]), min(v.loss)
    drop = (first - best) / abs(first) if first else 0.0
    moved = _weight_change(v)
    typical = typical_lr(v.optim_name)
    slow = (moved is not None and moved < 0.01) or bool(v.lr and typical and v.lr < typical / 30)
    ev = {"loss_first": first, "loss_best": best, "drop": drop, "weight_change": moved,
          "lr": v.lr, "optimizer": v.optim_name}  # fmt: skip
    if drop < NO_PROGRESS and slow:
        return [_too_low(v, ev, typical)]
    k = v.num_classes if v.classify else None
    val_acc = v.series("val/acc")[1]
    if k and val_acc and max(val_acc) <= 1.5 / k + 0.02:
        return _no_signal(v, drop, max(val_acc), 1.0 / k)
    if drop >= NO_PROGRESS:
        return []
    return [Finding(
        "run.plateau", "plateau", "warning", 0.6,
        f"the training loss fell by only {drop:.1%} ({first:.3g} → {best:.3g}) although the "
        "weights moved", ev,
        "the weights move without reducing the loss: a learning rate too high to descend "
        "(bouncing around the valley) or a model that cannot represent the task",
        [f"{_lr_key(v)}={num(v.lr / 10)}"] if v.lr else [],
    )]  # fmt: skip


def _too_low(v: RunView, ev: dict[str, Any], typical: float | None) -> Finding:
    target = typical if typical else (v.lr or 0.0) * 30
    moved = ev["weight_change"]
    return Finding(
        "run.plateau", "lr_too_low", "warning", 0.85,
        f"the training loss fell by only {ev['drop']:.1%} ({ev['loss_first']:.3g} → "
        f"{ev['loss_best']:.3g})" + (f"; the weights changed by {moved:.2%}" if moved else ""),
        ev, "the steps are too small to move the weights: the learning rate is too low",
        [f"{_lr_key(v)}={num(target)}"] if target else [],
    )  # fmt: skip


def _no_signal(v: RunView, drop: float, best_acc: float, chance: float) -> list[Finding]:
    val_loss = v.series("val/loss")[1]
    return [Finding(
        "run.no_signal", "no_label_signal", "warning", 0.9,
        f"validation accuracy never rose above chance (best {best_acc:.3f}, chance "
        f"{chance:.3f}) while the training loss fell by {drop:.0%}",
        {"best_val_acc": best_acc, "chance": chance, "train_loss_drop": drop,
         "val_loss_first": val_loss[0] if val_loss else None,
         "val_loss_last": val_loss[-1] if val_loss else None},
        "what the model learns on the training set does not transfer at all: the labels "
        "carry no signal about the inputs (shuffled or mis-joined labels), or validation "
        "data comes from another distribution",
        note="check that inputs and labels are paired correctly (look at `trainlab data "
        "RECIPE`'s sample grid with its labels)",
    )]  # fmt: skip


RuleFn = Callable[["RunView"], list[Finding]]


def _rules() -> list[RuleFn]:
    from trainlab.doctor import run_rules_fit

    return [diverged, spikes, no_learning, *run_rules_fit.RULES]


RULES: list[RuleFn] = _rules()
