"""Pre-flight rules on the optimisation: overfit one batch, and a short LR range test.

A healthy model, loss and optimiser memorise one small batch within a few hundred steps; one
that cannot is broken (or too small, or its LR is wrong). The range test
(:func:`trainlab.studies.lr_find.lr_find`) shows where the loss falls fastest and where it
diverges: a recipe LR beyond the divergence point or decades below the valley is wrong.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import torch

from trainlab.config.schema import Config
from trainlab.doctor.findings import Finding, num

__all__ = ["OverfitResult", "overfit_batch", "check_overfit", "check_lr", "recipe_lr"]

# The range test's LR where the loss diverged, divided by this, is the largest safe LR.
DIVERGE_MARGIN = 3.0
# A recipe LR this many times below the range test's suggestion is too low.
TOO_LOW = 30.0
# One batch not memorised, but its loss fell this much: slow, not broken (the classic sigmoid
# LeNet of the shipped recipes: 82 % in 200 steps).
SLOW_FIT = 0.5
# A range test (of at least NO_FALL_STEPS steps) whose smoothed loss never falls below
# (1 - NO_FALL) × its start found no LR that makes progress. Measured: shuffled digits labels
# 0.5 %; healthy recipes slow to start (text_classification 3.4 %, resnet18 4 % in a
# budget-cut test) stay above.
NO_FALL, NO_FALL_STEPS = 0.02, 50


@dataclass
class OverfitResult:
    """How training on one fixed batch went."""

    steps: int
    first_loss: float
    last_loss: float
    best_loss: float
    fitted: bool  # every sample of the batch classified right (or the loss fell by 90 %)
    diverged: bool
    seconds: float
    timed_out: bool = False  # the time budget ran out first: inconclusive


def recipe_lr(cfg: Config) -> float | None:
    """The recipe's peak learning rate: ``sched.max_lr`` of a one-cycle schedule, else
    ``optim.lr``."""
    if cfg.sched is not None and cfg.sched.options().get("max_lr") is not None:
        return float(cfg.sched.options()["max_lr"])
    lr = cfg.optim.options().get("lr")
    return float(lr) if isinstance(lr, (int, float)) else None


def _lr_key(cfg: Config) -> str:
    if cfg.sched is not None and cfg.sched.options().get("max_lr") is not None:
        return "sched.max_lr"
    return "optim.lr"


def _fitted(task: Any, model: Any, batch: Any, first: float, loss: float) -> bool:
    with torch.no_grad():
        out = task.eval_step(model, batch)
    preds, target = out.preds, out.target
    if preds is not None and target is not None and not target.is_floating_point():
        if preds.dim() == target.dim() + 1:
            return bool((preds.argmax(-1) == target).all())
    return loss < 0.1 * first


def overfit_batch(
    exp: Any, batch: Any, steps: int = 200, every: int = 10, max_seconds: float = math.inf
) -> OverfitResult:
    """Train ``exp``'s model with its optimizer (constant LR) on ``batch`` until it is
    fitted, diverges, ``steps`` pass or ``max_seconds`` run out. Changes the model and
    optimizer state: callers restore them."""
    model, task, opt = exp.model, exp.task, exp.optimizer
    t0 = time.perf_counter()
    first = best = last = math.nan
    for step in range(1, steps + 1):
        model.train()
        opt.zero_grad(set_to_none=True)
        with exp.trainer.autocast():  # the run's precision (bf16 is ~3x faster on this CPU)
            loss = task.train_step(model, batch).loss
        last = float(loss.detach())
        first = last if step == 1 else first
        best = last if math.isnan(best) else min(best, last)
        if not math.isfinite(last) or (step > 5 and last > 3 * first + 1):
            return OverfitResult(step, first, last, best, False, True, time.perf_counter() - t0)
        loss.backward()
        opt.step()
        if step % every == 0 and _fitted(task, model, batch, first, last):
            return OverfitResult(step, first, last, best, True, False, time.perf_counter() - t0)
        if time.perf_counter() - t0 > max_seconds:
            return OverfitResult(step, first, last, best, False, False, max_seconds, True)
    return OverfitResult(steps, first, last, best, False, False, time.perf_counter() - t0)


def step_seconds(exp: Any, batch: Any, repeats: int = 1) -> float:
    """Seconds of one training step (forward, backward; the trainer's precision) on
    ``batch``: what a range-test step costs. Changes gradients only."""
    model, task = exp.model, exp.task
    model.train()
    times = []
    for _ in range(repeats + 1):  # the first call pays one-off costs
        t0 = time.perf_counter()
        with exp.trainer.autocast():
            loss = task.train_step(model, batch).loss
        loss.backward()
        model.zero_grad(set_to_none=True)
        times.append(time.perf_counter() - t0)
    return min(times[1:])


def check_overfit(cfg: Config, r: OverfitResult, n: int) -> list[Finding]:
    """Findings from :func:`overfit_batch` on a batch of ``n`` samples."""
    ev = {"batch": n, "steps": r.steps, "first_loss": r.first_loss, "last_loss": r.last_loss,
          "best_loss": r.best_loss, "seconds": r.seconds}  # fmt: skip
    lr = recipe_lr(cfg)
    if r.timed_out and not r.diverged:
        return []
    if r.diverged:
        fix = [f"{_lr_key(cfg)}={num(lr / 10)}"] if lr else []
        return [Finding(
            "optim.overfit_batch", "lr_too_high", "warning", 0.75,
            f"training on one batch of {n} diverges at the recipe's LR (loss {r.first_loss:.3g}"
            f" → {r.last_loss:.3g} in {r.steps} steps)", ev,
            "the learning rate is too high for this model and data", fix,
        )]  # fmt: skip
    if r.fitted:
        return []
    drop = 1 - r.best_loss / r.first_loss if r.first_loss else 0.0
    if drop >= SLOW_FIT:
        return [Finding(
            "optim.overfit_batch", "slow_fit", "info", 0.3,
            f"one batch of {n} was not memorised in {r.steps} steps, though its loss fell "
            f"{drop:.0%} ({r.first_loss:.3g} → {r.best_loss:.3g})", {**ev, "drop": drop},
            "the model learns, slowly: saturating activations, a small LR or little capacity",
        )]  # fmt: skip
    if drop > 0.3:
        return [Finding(
            "optim.overfit_batch", "underfitting", "warning", 0.45,
            f"the model cannot memorise one batch of {n} in {r.steps} steps (loss "
            f"{r.first_loss:.3g} → {r.best_loss:.3g})", {**ev, "drop": drop},
            "too little capacity: the model learns but cannot even fit a few examples",
            note="a larger model (more or wider layers)",
        )]  # fmt: skip
    return [Finding(
        "optim.overfit_batch", "cannot_fit_batch", "warning", 0.5,
        f"the loss on one batch of {n} barely moves in {r.steps} steps ({r.first_loss:.3g} → "
        f"{r.best_loss:.3g}, {drop:.0%} lower)", {**ev, "drop": drop},
        "a model, loss and optimiser that work memorise one batch quickly: something blocks "
        "learning (an LR far too low, vanishing gradients, a frozen or detached part)",
    )]  # fmt: skip


def check_lr(cfg: Config, res: Any, fitted: bool | None = None) -> list[Finding]:
    """Findings from an :class:`~trainlab.studies.lr_find.LRFindResult` against the recipe;
    ``fitted``: whether the model memorised one batch (:func:`overfit_batch`)."""
    lr = recipe_lr(cfg)
    if lr is None or not res.lrs:
        return []
    if fitted and len(res.lrs) >= NO_FALL_STEPS and _no_fall(res):
        return [_no_signal(res)]
    rules = dict(res.suggestions)
    ev: dict[str, Any] = {"recipe_lr": lr, "suggestions": rules, "reliable": res.reliable,
                          "stopped": res.stopped, "reasons": list(res.reasons)}  # fmt: skip
    key = _lr_key(cfg)
    good = res.suggested or rules.get("valley") or rules.get("steepest")
    if res.stopped:
        diverge_at = float(res.lrs[-1])
        ev["diverged_at"] = diverge_at
        if lr >= diverge_at / DIVERGE_MARGIN:
            target = good if good and good < diverge_at / DIVERGE_MARGIN else diverge_at / 10
            return [Finding(
                "optim.lr_range", "lr_too_high", "warning",
                min(1.0, 0.85 + 0.05 * math.log10(lr * DIVERGE_MARGIN / diverge_at)),
                f"the recipe's LR {lr:.3g} is at or beyond where the range test diverges "
                f"({diverge_at:.3g})", ev,
                "steps this large overshoot: the loss will spike or become NaN",
                [f"{key}={num(target)}"],
            )]  # fmt: skip
    if good and lr * TOO_LOW <= good and rules:
        return [Finding(
            "optim.lr_range", "lr_too_low", "warning",
            min(1.0, 0.8 + 0.05 * math.log10(good / (lr * TOO_LOW))),
            f"the recipe's LR {lr:.3g} is {good / lr:.0f}× below the range test's suggestion "
            f"({good:.3g})", ev,
            "steps this small barely move the weights: the loss will crawl or plateau",
            [f"{key}={num(good)}"],
        )]  # fmt: skip
    return []


def _no_fall(res: Any) -> bool:
    finite = [v for v in res.smoothed if math.isfinite(v)]
    if len(finite) < 10:
        return False
    start = sum(finite[:3]) / 3
    return start > 0 and (start - min(finite)) / start < NO_FALL


def _no_signal(res: Any) -> Finding:
    finite = [v for v in res.smoothed if math.isfinite(v)]
    return Finding(
        "optim.lr_range", "no_label_signal", "warning", 0.85,
        f"the model memorises one batch, yet no learning rate from {res.lrs[0]:.2g} to "
        f"{res.lrs[-1]:.2g} lowers the loss on fresh batches ({finite[0]:.3g} → "
        f"{min(finite):.3g})", {"smoothed_start": finite[0], "smoothed_min": min(finite),
                               "reasons": list(res.reasons)},
        "what is learnt from one batch does not carry over to the next: the labels carry no "
        "signal about the inputs (shuffled or mis-joined labels)",
        note="check that inputs and labels are paired correctly (`trainlab data RECIPE`)",
    )  # fmt: skip
