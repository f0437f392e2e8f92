"""From a validated config to live objects: the builders every command shares.

Study tools (tune, cv, analyze…) build their runs with these same functions.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from pydantic import BaseModel
from torch import nn

from trainlab.callbacks.base import CALLBACKS
from trainlab.config.schema import Config, RegistrySection
from trainlab.config.validate import validate_options
from trainlab.data.base import DATA, DataModule
from trainlab.errors import ConfigError
from trainlab.models.init import INITS, init_weights
from trainlab.models.layers import set_grad_checkpointing
from trainlab.models.registry import MODELS, create_model
from trainlab.optim import SCHEDULERS, build_optimizer, build_scheduler
from trainlab.optim.optimizers import OPTIMIZERS, freeze
from trainlab.optim.schedulers import Schedule, ScheduleContext
from trainlab.preflight import target_width
from trainlab.registry import Registry, keyword_options
from trainlab.tasks.base import TASKS, Task
from trainlab.train.trainer import Trainer

__all__ = ["Experiment", "build_experiment", "build_data", "seed_everything", "check_config"]

# Model options trainlab fills from the data when the recipe leaves them out.
_FROM_DATA = ("num_classes", "in_channels", "in_features")


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA) RNGs."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _section_options(reg: Registry[Any], sec: RegistrySection, where: str) -> dict[str, Any]:
    fn = reg.get(sec.name, where=f"{where}.name")
    return validate_options(fn, sec.options(), where=where, entry=f"{reg.kind} '{sec.name}'")


def check_config(cfg: Config) -> None:
    """Check every registry name and option in ``cfg`` before anything is built or written."""
    _section_options(DATA, cfg.data, "data")
    for key in ("batch_size", "eval_batch_size"):  # every data source takes them as counts
        value = cfg.data.options().get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value < 1:
            raise ConfigError(f"data.{key}: must be at least 1, got {value}")
    fn = MODELS.get(cfg.model.name, where="model.name")
    validate_options(fn, cfg.model.options(), where="model", entry=f"model '{cfg.model.name}'",
                     optional=_FROM_DATA)  # fmt: skip
    if cfg.model.init not in INITS:
        init_weights(nn.Identity(), cfg.model.init)  # raises the one-line error
    _section_options(TASKS, cfg.task, "task")
    _section_options(OPTIMIZERS, cfg.optim, "optim")
    if cfg.sched is not None:
        _section_options(SCHEDULERS, cfg.sched, "sched")
    for i, cb in enumerate(cfg.callbacks):
        _section_options(CALLBACKS, cb, f"callbacks.{i}")
    if cfg.train.nan_policy == "rollback" and not cfg.train.checkpoint:
        raise ConfigError(
            "train.nan_policy: rollback needs checkpoints to roll back to; "
            "set train.checkpoint: true or choose nan_policy stop or skip"
        )


def build_data(name: str, *, default_seed: int = 0, **options: Any) -> DataModule:
    """A data module by registry name (not yet set up); ``default_seed`` seeds its shuffling
    unless the options set ``seed`` themselves."""
    fn = DATA.get(name, where="data.name")
    if "seed" in keyword_options(fn) and "seed" not in options:
        options["seed"] = default_seed
    return fn(**validate_options(fn, options, where="data", entry=f"data '{name}'"))


def model_options(cfg: Config, data: DataModule) -> dict[str, Any]:
    """The recipe's model options, completed with sizes taken from the data."""
    params = keyword_options(MODELS.get(cfg.model.name))
    opts = cfg.model.options()
    shape = data.input_shape
    known = {
        "num_classes": data.num_classes,
        "in_channels": shape[0] if len(shape) == 3 else None,
        "in_features": int(np.prod(shape)) if shape else None,
    }
    for key in _FROM_DATA:
        if key in params and key not in opts and known[key] is not None:
            opts[key] = known[key]
    # Regression and forecasting (no classes): one output per target value, from the data.
    out_key = next((k for k in ("num_outputs", "num_classes") if k in params), None)
    if data.num_classes is None and out_key is not None and out_key not in opts:
        width = target_width(data)
        if width is not None:
            opts[out_key] = width
    return opts


@dataclass
class Experiment:
    """Every object one run needs, built from one config."""

    cfg: Config
    data: DataModule
    model: nn.Module
    task: Task
    optimizer: torch.optim.Optimizer
    schedule: Schedule | None
    trainer: Trainer
    model_options: dict[str, Any]
    init_report: dict[str, Any] | None = None  # model.init_from: loaded / new / skipped tensors


def build_experiment(cfg: Config, callbacks: list[Any] | None = None) -> Experiment:
    """Seed, then build data (set up on the device), model, task, optimizer, schedule, trainer."""
    check_config(cfg)
    t = cfg.train
    if t.threads:
        torch.set_num_threads(t.threads)
    trainer = Trainer(
        epochs=t.epochs,
        device=t.device,
        precision=t.precision,
        channels_last=t.channels_last,
        grad_clip=t.grad_clip,
        grad_clip_mode=t.grad_clip_mode,
        log_every=t.log_every,
        max_steps=t.max_steps,
        accumulate=t.accumulate,
        ema_decay=t.ema_decay,
        l1=t.l1,
        l2=t.l2,
        penalty_on=t.penalty_on,
        nan_policy=t.nan_policy,
        deterministic=t.deterministic,
        sync_batchnorm=t.sync_batchnorm,
        fold_batchnorm=t.fold_batchnorm,
        callbacks=callbacks or [],
        progress=False,  # trainlab.run adds its own ProgressBar (none with --no-progress)
    )
    seed_everything(cfg.seed)
    data = build_data(cfg.data.name, default_seed=cfg.seed, **cfg.data.options())
    data.setup(trainer.device)
    opts = model_options(cfg, data)
    seed_everything(cfg.seed)  # model init independent of how much RNG the data consumed
    model = create_model(cfg.model.name, **opts)
    init_weights(model, cfg.model.init, cfg.model.init_std)
    init_report = None
    if cfg.model.init_from is not None:  # transfer learning: weights by name and shape
        from trainlab.compress.init_from import init_from

        init_report = init_from(model, cfg.model.init_from, cfg.model.init_skip)
    if cfg.model.qat:  # quantization-aware training: a fake-quantised int8 graph (PT2E)
        from trainlab.compress.qat import prepare_qat

        model = prepare_qat(model, tuple(data.input_shape), t.precision)
    if t.grad_checkpointing:
        set_grad_checkpointing(model, where="train.grad_checkpointing")
    trainer.prepare(model)
    task = TASKS.get(cfg.task.name)(**_section_options(TASKS, cfg.task, "task"))
    if callable(getattr(task, "check_data", None)):
        task.check_data(data)  # e.g. flip TTA on non-image data: fails before training
    # train.unfreeze_at_epoch: frozen tensors join the optimizer now (no gradient, so no
    # update) and train once the Unfreeze callback turns their gradients on.
    later = cfg.train.unfreeze_at_epoch is not None
    if cfg.optim.freeze and not later:
        freeze(model, cfg.optim.freeze)
    # A task may optimise part of the model with the main optimizer (a GAN's generator) and
    # handle the rest itself (its discriminator): ``task.optim_module(model)``.
    target = task.optim_module(model) if callable(getattr(task, "optim_module", None)) else model
    optimizer = build_optimizer(
        target, cfg.optim.name, cfg.optim.options(), cfg.optim.decay_norm_and_bias,
        cfg.optim.lr_mult,
    )  # fmt: skip
    if cfg.optim.freeze and later:
        freeze(model, cfg.optim.freeze)
    schedule = None
    if cfg.sched is not None:
        steps = -(-len(data.loader("train")) // t.accumulate)  # optimizer steps per epoch
        ctx = ScheduleContext(t.epochs, steps)
        schedule = build_scheduler(
            optimizer,
            cfg.sched.name,
            cfg.sched.options(),
            ctx,
            cfg.sched.warmup_epochs,
            cfg.sched.warmup_start_factor,
        )
    return Experiment(cfg, data, model, task, optimizer, schedule, trainer, opts, init_report)


def build_callbacks(cfg: Config) -> list[Any]:
    """The recipe's ``callbacks:`` entries as objects."""
    callbacks = [
        CALLBACKS.get(cb.name, where=f"callbacks.{i}.name")(
            **_section_options(CALLBACKS, cb, f"callbacks.{i}")
        )
        for i, cb in enumerate(cfg.callbacks)
    ]
    if cfg.train.unfreeze_at_epoch is not None:  # fine-tuning: unfreeze the backbone later
        from trainlab.compress.init_from import Unfreeze

        callbacks.append(Unfreeze(cfg.optim.freeze, cfg.train.unfreeze_at_epoch))
    return callbacks + _after_training_callbacks(cfg)


def _after_training_callbacks(cfg: Config) -> list[Any]:
    """``train.freeze_bn`` and ``train.swa`` as callbacks (SWA before the checkpointer, which
    saves its averaged weights as the run's best)."""
    t, out = cfg.train, []
    keep: tuple[str, ...] = ()
    if t.freeze_bn:
        from trainlab.callbacks.freeze_bn import FreezeBatchNorm

        keep = tuple(t.freeze_bn) if isinstance(t.freeze_bn, list) else (
            tuple(cfg.optim.freeze) or ("",))  # fmt: skip
        out.append(FreezeBatchNorm(keep))
    if t.swa is not None:
        from trainlab.callbacks.swa import SWA, start_epoch

        if t.ema_decay is not None:
            raise ConfigError("train.swa and train.ema_decay both average the weights; "
                              "choose one (train.ema_decay=null or train.swa=null)")  # fmt: skip
        start_epoch(t.swa.start, t.epochs)  # a start beyond the last epoch: one line, now
        s = t.swa
        out.append(SWA(s.start, s.lr, s.anneal_epochs, s.anneal, t.accumulate, keep))
    return out


def resolved_config(cfg: Config, exp: Experiment | None = None) -> dict[str, Any]:
    """The config with every registry option spelled out (defaults included)."""
    out = cfg.model_dump(mode="json")
    sections: list[tuple[str, Registry[Any], RegistrySection, dict[str, Any]]] = [
        ("data", DATA, cfg.data, cfg.data.options()),
        ("model", MODELS, cfg.model, exp.model_options if exp else cfg.model.options()),
        ("task", TASKS, cfg.task, cfg.task.options()),
    ]
    if exp is not None and "seed" in keyword_options(DATA.get(cfg.data.name)):
        sections[0][3].setdefault("seed", cfg.seed)
    for key, reg, sec, given in sections:
        own = sec.model_dump(mode="json", exclude=set(sec.model_extra or {}))  # name, init…
        out[key] = {**own, **_with_defaults(reg.get(sec.name), given)}
    return out


def _with_defaults(fn: Any, given: dict[str, Any]) -> dict[str, Any]:
    full: dict[str, Any] = {}
    for name, p in keyword_options(fn).items():
        value = given.get(name, p.default)
        if value is p.empty:
            continue
        full[name] = _jsonable(value)
    return full


def _jsonable(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, tuple):
        return list(value)
    return value
