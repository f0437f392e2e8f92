"""Learning-rate schedules, registered by name.

Every schedule except ``plateau`` is stepped once per optimizer step; epoch-based textbook
schedules (step, multistep, exponential) are expressed in steps with the same per-epoch
staircase, so a linear warm-up can sit in front of any of them. ``plateau`` steps once per epoch
on the monitored validation metric.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch.optim import lr_scheduler as lrs

from trainlab.config.validate import validate_options
from trainlab.errors import ConfigError
from trainlab.registry import Registry

__all__ = ["SCHEDULERS", "Schedule", "ScheduleContext", "build_scheduler", "scale_lr"]


@dataclass(frozen=True)
class ScheduleContext:
    epochs: int
    steps_per_epoch: int

    @property
    def total_steps(self) -> int:
        return self.epochs * self.steps_per_epoch


@dataclass
class Schedule:
    """A scheduler and when to step it: ``interval`` is ``step`` or ``epoch``."""

    scheduler: Any
    interval: Literal["step", "epoch"] = "step"
    monitor: str | None = None  # plateau: the metric passed to scheduler.step(value)


Opt = torch.optim.Optimizer
SCHEDULERS: Registry[Callable[..., Schedule]] = Registry(
    "scheduler", supplied=2, expected="def my_sched(optimizer, ctx: ScheduleContext, *, "
    "option: type = default) -> Schedule",
)


@SCHEDULERS.register("step")
def step(opt: Opt, ctx: ScheduleContext, *, step_size: int = 30, gamma: float = 0.1) -> Schedule:
    """Multiply the LR by ``gamma`` every ``step_size`` epochs."""
    return Schedule(lrs.StepLR(opt, step_size=step_size * ctx.steps_per_epoch, gamma=gamma))


@SCHEDULERS.register("multistep")
def multistep(
    opt: Opt, ctx: ScheduleContext, *, milestones: list[int], gamma: float = 0.1
) -> Schedule:
    """Multiply the LR by ``gamma`` at each epoch in ``milestones``."""
    steps = [m * ctx.steps_per_epoch for m in milestones]
    return Schedule(lrs.MultiStepLR(opt, milestones=steps, gamma=gamma))


@SCHEDULERS.register("exponential")
def exponential(opt: Opt, ctx: ScheduleContext, *, gamma: float = 0.95) -> Schedule:
    """Multiply the LR by ``gamma`` after every epoch."""
    return Schedule(lrs.StepLR(opt, step_size=ctx.steps_per_epoch, gamma=gamma))


@SCHEDULERS.register("cosine")
def cosine(opt: Opt, ctx: ScheduleContext, *, eta_min: float = 0.0) -> Schedule:
    """Cosine decay from the LR to ``eta_min`` over the whole run."""
    return Schedule(lrs.CosineAnnealingLR(opt, T_max=max(1, ctx.total_steps), eta_min=eta_min))


@SCHEDULERS.register("cosine_restarts")
def cosine_restarts(
    opt: Opt, ctx: ScheduleContext, *, t0_epochs: int = 10, t_mult: int = 1, eta_min: float = 0.0
) -> Schedule:
    """SGDR: cosine cycles of ``t0_epochs`` epochs, each ``t_mult`` times longer."""
    t0 = t0_epochs * ctx.steps_per_epoch
    return Schedule(lrs.CosineAnnealingWarmRestarts(opt, T_0=t0, T_mult=t_mult, eta_min=eta_min))


@SCHEDULERS.register("onecycle")
def onecycle(
    opt: Opt,
    ctx: ScheduleContext,
    *,
    max_lr: float | None = None,
    pct_start: float = 0.25,
    div_factor: float = 25.0,
    final_div_factor: float = 1e4,
    anneal: str = "cos",
) -> Schedule:
    """One-cycle (Smith, 2018): warm up to ``max_lr`` (default: the optimizer's LR), anneal."""
    peak = max_lr if max_lr is not None else [g["lr"] for g in opt.param_groups]
    return Schedule(
        lrs.OneCycleLR(
            opt,
            max_lr=peak,
            total_steps=max(2, ctx.total_steps),
            pct_start=pct_start,
            div_factor=div_factor,
            final_div_factor=final_div_factor,
            anneal_strategy=anneal,
        )
    )


@SCHEDULERS.register("cyclic")
def cyclic(
    opt: Opt,
    ctx: ScheduleContext,
    *,
    base_lr: float = 1e-3,
    max_lr: float = 0.1,
    step_size_up_epochs: float = 2.0,
    mode: str = "triangular",
) -> Schedule:
    """Cyclical LR (triangular) between ``base_lr`` and ``max_lr``."""
    up = max(1, int(step_size_up_epochs * ctx.steps_per_epoch))
    momentum = "momentum" in opt.defaults and opt.defaults.get("momentum", 0) > 0
    return Schedule(
        lrs.CyclicLR(
            opt, base_lr=base_lr, max_lr=max_lr, step_size_up=up, mode=mode, cycle_momentum=momentum
        )
    )


@SCHEDULERS.register("plateau")
def plateau(
    opt: Opt,
    ctx: ScheduleContext,
    *,
    monitor: str = "val/loss",
    mode: str = "min",
    factor: float = 0.1,
    patience: int = 3,
    min_lr: float = 0.0,
) -> Schedule:
    """Reduce the LR by ``factor`` when ``monitor`` stops improving for ``patience`` epochs."""
    sched = lrs.ReduceLROnPlateau(opt, mode=mode, factor=factor, patience=patience, min_lr=min_lr)
    return Schedule(sched, interval="epoch", monitor=monitor)


def build_scheduler(
    opt: Opt,
    name: str,
    options: dict[str, Any],
    ctx: ScheduleContext,
    warmup_epochs: float = 0.0,
    warmup_start_factor: float = 0.1,
) -> Schedule:
    """Schedule ``name``, optionally behind a linear warm-up of ``warmup_epochs`` epochs.

    >>> opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
    >>> s = build_scheduler(opt, "cosine", {}, ScheduleContext(epochs=2, steps_per_epoch=10))
    """
    fn = SCHEDULERS.get(name, where="sched.name")
    opts = validate_options(fn, options, where="sched", entry=f"scheduler '{name}'")
    warm = int(round(warmup_epochs * ctx.steps_per_epoch))
    main_ctx = ScheduleContext(ctx.epochs, ctx.steps_per_epoch)
    if warm and name not in ("plateau",):
        # The main schedule runs over what remains after the warm-up.
        rest = max(1, ctx.total_steps - warm)
        main_ctx = ScheduleContext(1, rest) if name in ("cosine", "onecycle") else ctx
    sched = fn(opt, main_ctx, **opts)
    if not warm:
        return sched
    if sched.interval != "step":
        raise ConfigError(f"sched.warmup_epochs: not supported with scheduler '{name}'")
    warmup = lrs.LinearLR(opt, start_factor=warmup_start_factor, total_iters=warm)
    seq = lrs.SequentialLR(opt, [warmup, sched.scheduler], milestones=[warm])
    return Schedule(seq, interval="step")


def scale_lr(opt: Opt, schedule: Schedule | None, factor: float) -> None:
    """Multiply every learning rate ``opt`` and its schedule will use by ``factor``: the
    current LR, and the base/peak/floor LRs schedules compute it from (a one-cycle's peak,
    a warm-up's target, a cyclic schedule's bounds), so the whole remaining trajectory is
    scaled. Used to roll back after a divergence (``train.nan_policy: rollback``)."""
    for group in opt.param_groups:
        for key in ("lr", "initial_lr", "max_lr", "min_lr"):
            if isinstance(group.get(key), (int, float)):
                group[key] *= factor
    if schedule is not None:
        _scale_scheduler(schedule.scheduler, factor)


def _scale_scheduler(sched: Any, factor: float) -> None:
    for attr in ("base_lrs", "max_lrs", "min_lrs", "_last_lr"):
        values = getattr(sched, attr, None)
        if isinstance(values, list):
            setattr(sched, attr, [v * factor for v in values])
    for child in getattr(sched, "_schedulers", []):  # SequentialLR: warm-up, then the main one
        _scale_scheduler(child, factor)
