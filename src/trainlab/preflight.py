"""Pre-flight: one batch through the model, the loss and the metrics before the first step.

A mismatch between the data and the model (channels, input size, number of classes, output size,
dtype) or a monitored metric the run will never log becomes one line that names both sides and
the override that fixes it, before anything is trained or written. The check touches no RNG
(every generator's state is restored), no weights and no norm statistics (evaluation mode,
no gradients), so a run with it is bitwise the run without it.
"""

from __future__ import annotations

import math
import traceback
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

from trainlab.errors import ConfigError, DataError, TrainlabError
from trainlab.registry import did_you_mean

__all__ = ["preflight", "peek_batch", "logged_keys", "target_width", "building"]

Batch = tuple[torch.Tensor, torch.Tensor]
PREFLIGHT_SAMPLES = 32  # samples of the first batch that go through the model before training


@contextmanager
def _rng_untouched() -> Iterator[None]:
    from trainlab.train.checkpoint import rng_state, set_rng_state

    saved = rng_state()
    try:
        yield
    finally:
        set_rng_state(saved)


_SECTIONS = {"data": "data", "models": "model", "tasks": "task", "callbacks": "callbacks",
             "optimizers.py": "optim", "schedulers.py": "sched"}  # fmt: skip


def _section_of(tb: Any) -> str:
    """The recipe section whose builder raised: the deepest trainlab frame of the traceback."""
    found = "recipe"
    for frame, _ in traceback.walk_tb(tb):
        parts = Path(frame.f_code.co_filename).parts
        if "trainlab" in parts:
            rest = parts[parts.index("trainlab") + 1 :]
            found = next((_SECTIONS[p] for p in rest if p in _SECTIONS), found)
    return found


@contextmanager
def building(cfg: Any) -> Iterator[None]:
    """Around the builders (data, model, task, optimizer, schedule): an exception raised while
    building from the recipe's options (a negative size, zero classes, an invalid learning
    rate) becomes one :class:`ConfigError` naming the section; ``--debug`` shows the traceback.

    >>> with building(cfg):            # doctest: +SKIP
    ...     exp = build_experiment(cfg)
    """
    try:
        yield
    except (RuntimeError, ValueError, TypeError, IndexError, ZeroDivisionError, OverflowError,
            KeyError, AttributeError, AssertionError) as e:  # fmt: skip
        if isinstance(e, TrainlabError):
            raise
        section = _section_of(e.__traceback__)
        name = getattr(getattr(cfg, section, None), "name", None) if section != "recipe" else None
        what = f"{section} '{name}'" if name else f"the {section}"
        msg = (str(e).strip().splitlines() or [""])[0][:300]
        raise ConfigError(
            f"{what} cannot be built with the options given ({type(e).__name__}: {msg}); "
            f"check the {section}: section (--debug shows where it failed)"
        ) from None


def peek_batch(data: Any) -> Batch:
    """The first batch of the validation split (the training split when there is none),
    without consuming any RNG. A batch that cannot be assembled is a one-line :class:`DataError`.

    >>> x, y = peek_batch(exp.data)  # doctest: +SKIP
    """
    split = "val" if data.sizes.get("val", 0) > 0 else "train"
    with _rng_untouched():
        try:
            return next(iter(data.loader(split).iter_epoch(0)))
        except StopIteration:
            raise DataError(f"data: the {split} split has no batch") from None
        except RuntimeError as e:  # e.g. torch.stack over images of different sizes
            msg = str(e).splitlines()[0]
            hint = "; set data.transforms.resize (and crop)" if "stack expects" in msg else ""
            raise DataError(f"data: cannot assemble a {split} batch ({msg}){hint}") from None


def target_width(data: Any) -> int | None:
    """Values per sample of a float target (1 for (N,), H·T for (N, H, T)), read from one
    batch; None for integer targets (labels, tokens).

    >>> target_width(build_data("diabetes"))  # doctest: +SKIP
    1
    """
    _, y = peek_batch(data)
    return math.prod(y.shape[1:]) if torch.is_floating_point(y) else None


def _describe(t: Any) -> str:
    if not isinstance(t, torch.Tensor):
        return type(t).__name__
    return f"{list(t.shape)} {str(t.dtype).removeprefix('torch.')}"


def _model_value(exp: Any, key: str) -> Any:
    """The value the model was built with for option ``key`` (given, filled or default), or
    None when the model has no such option."""
    from trainlab.models.registry import MODELS
    from trainlab.registry import keyword_options

    params = keyword_options(MODELS.get(exp.cfg.model.name))
    if key not in params:
        return None
    return exp.model_options.get(key, params[key].default)


def _size_hint(exp: Any, x: torch.Tensor) -> str:
    name, size = exp.cfg.model.name, _model_value(exp, "image_size")
    if size is not None and x.dim() == 4:
        return (f"model '{name}' was built for image_size={size}, the images are "
                f"{x.shape[-2]}×{x.shape[-1]}: set model.image_size={x.shape[-1]} or "
                f"data.transforms.resize={size}")  # fmt: skip
    features = math.prod(x.shape[1:])
    if _model_value(exp, "in_features") is not None:
        return (f"the samples have {features} features (shape {list(x.shape[1:])}): set "
                f"model.in_features={features} (or leave it out: trainlab takes it from the "
                "data)")  # fmt: skip
    if "transforms" in _data_params(exp) and x.dim() == 4:
        return (
            "the images are {}×{}: set data.transforms.resize to the size the model "
            "expects, or the model's input-size option"
        ).format(*x.shape[-2:])
    return f"model '{name}' expects another input size than {list(x.shape[1:])}"


def _hint(msg: str, exp: Any, x: torch.Tensor, y: torch.Tensor) -> str:
    """The override most likely to fix a forward error, from the error's wording."""
    if not isinstance(x, torch.Tensor):  # a structured input (a graph's NodeBatch): the task
        return "check the model options against the data"  # has named the fix in ``msg``
    if "channels" in msg and x.dim() == 4:
        fix = f"model.in_channels={x.shape[1]}"
        if "mode" in _data_params(exp) and x.shape[1] in (1, 3):
            fix += f" (or data.mode={'L' if x.shape[1] == 3 else 'RGB'})"
        return f"the images have {x.shape[1]} channels: set {fix}"
    if "shapes cannot be multiplied" in msg or "size of tensor" in msg:
        return _size_hint(exp, x)
    k = exp.data.num_classes
    if ("out of bounds" in msg or "Target" in msg) and k:
        return f"the data has {k} classes (labels 0..{k - 1}): set model.num_classes={k}"
    dtype_error = "scalar type" in msg or "dtype" in msg or "Long, Int" in msg
    if dtype_error and not torch.is_floating_point(x) and "target" not in msg.lower():
        return (f"the data gives token ids ({_describe(x)}) but model '{exp.cfg.model.name}' "
                "takes float features: use a model that embeds tokens (gru, lstm, "
                "transformer_classifier)")  # fmt: skip
    if dtype_error:
        side = "targets" if "target" in msg.lower() else "inputs"
        got = str((y if side == "targets" else x).dtype).removeprefix("torch.")
        return (f"the data's {side} are {got}: the task or model expects another type "
                "(class labels and token ids are integers, features and regression targets "
                "floats); check task.name and data.task")  # fmt: skip
    return "check the model options against the data"


def _data_params(exp: Any) -> set[str]:
    from trainlab.data.base import DATA
    from trainlab.registry import keyword_options

    return set(keyword_options(DATA.get(exp.cfg.data.name)))


def _check_task_fits_data(exp: Any) -> None:
    """Classification needs labels; regression needs float targets, not labels."""
    from trainlab.tasks.classification import ClassificationTask, RegressionTask

    task, data = exp.cfg.task.name, exp.cfg.data.name
    if isinstance(exp.task, ClassificationTask) and not exp.data.num_classes:
        raise ConfigError(
            f"task.name: '{task}' needs labelled data, but data '{data}' has no classes "
            "(numeric targets): use task.name=regression, or class labels in the data"
        )
    if isinstance(exp.task, RegressionTask) and exp.data.num_classes:
        raise ConfigError(
            f"task.name: 'regression' on data '{data}' with {exp.data.num_classes} classes: use "
            "task.name=classification, or numeric targets (e.g. data.task=regression)"
        )


def _forward(exp: Any, batch: Batch) -> Any:
    """``task.eval_step`` on one batch in evaluation mode, without gradients."""
    model, trainer = exp.model, exp.trainer
    x, y = batch
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), trainer.autocast(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a broadcasting warning: the checks below say more
            try:
                return exp.task.eval_step(model, (trainer._as_input(x), y))
            except (RuntimeError, ValueError, IndexError, TypeError) as e:
                _explain_outputs(exp, x, y)  # a precise message when the output size is wrong
                msg = (str(e).strip().splitlines() or [type(e).__name__])[0]
                raise ConfigError(
                    f"model '{exp.cfg.model.name}' cannot take a batch of data "
                    f"'{exp.cfg.data.name}' (inputs {_describe(x)}, targets {_describe(y)}): "
                    f"{msg[:300]}; {_hint(msg, exp, x, y)}"
                ) from None
    finally:
        model.train(was_training)


def _explain_outputs(exp: Any, x: torch.Tensor, y: torch.Tensor) -> None:
    """For classification and regression: the model's own output checked against the data."""
    from trainlab.tasks.base import StepOutput
    from trainlab.tasks.classification import ClassificationTask, RegressionTask

    if not isinstance(exp.task, (ClassificationTask, RegressionTask)):
        return
    try:
        preds = exp.model(exp.trainer._as_input(x))
    except Exception:  # noqa: BLE001 - the forward itself fails: the caller explains that
        return
    if isinstance(preds, torch.Tensor):
        _check_outputs(exp, StepOutput(torch.zeros(()), preds, y), y)


def _check_outputs(exp: Any, out: Any, y: torch.Tensor) -> None:
    """Classification: logits (N, K) with K = the data's classes; regression: one output per
    target value."""
    from trainlab.tasks.classification import ClassificationTask, RegressionTask

    preds, k, name = out.preds, exp.data.num_classes, exp.cfg.model.name
    if isinstance(exp.task, ClassificationTask) and preds is not None and preds.dim() == 2 and k:
        if preds.shape[1] != k:
            raise ConfigError(
                f"model '{name}' gives {preds.shape[1]} class scores per sample but the data has "
                f"{k} classes: set model.num_classes={k} (or leave it out: trainlab takes it "
                "from the data)"
            )
    if isinstance(exp.task, RegressionTask) and preds is not None:
        want = math.prod(y.shape[1:])
        got = math.prod(preds.shape[1:])
        if got != want:
            key = "num_outputs" if "num_outputs" in exp.model_options else "num_classes"
            raise ConfigError(
                f"model '{name}' gives {got} outputs per sample but the targets have {want} "
                f"value(s) per sample: set model.{key}={want} (or leave it out: trainlab takes "
                "it from the data)"
            )


def _check_metrics(exp: Any, out: Any) -> list[str]:
    """The names of the task's metrics, after scoring the preflight batch with them.

    A task whose optional ``metric_names(num_classes, out)`` hook vouches for its metrics
    (they will score outputs like ``out``, checked without building them) returns their names
    and its metrics are not built here: they, and the torchmetrics import (~1 s), wait for the
    first validation, off the path to the first training step. A hook returning None, or none
    at all, means the metrics are built and score ``out`` now.
    """
    names_hook = getattr(exp.task, "metric_names", None)
    names = names_hook(exp.data.num_classes, out) if callable(names_hook) else None
    if names is not None:
        return list(names)
    metrics = exp.task.metrics(exp.data.num_classes).to(exp.trainer.device)
    if out.preds is None:
        return list(metrics.keys())
    try:
        metrics.update(out.preds, out.target)
    except (RuntimeError, ValueError, IndexError) as e:
        msg = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise ConfigError(
            f"task '{exp.cfg.task.name}': its metrics cannot score the model's outputs "
            f"(predictions {_describe(out.preds)}, targets {_describe(out.target)}): {msg[:300]}"
        ) from None
    return list(metrics.keys())


def logged_keys(exp: Any, metric_names: list[str], out: Any) -> set[str]:
    """Metric keys the run will log: ``train/…`` from the loop, ``val/…`` from the task."""
    keys = {"train/loss", "train/loss_epoch", "lr", "train/samples_per_s",
            "train/skipped_batches"}  # fmt: skip
    if out.preds is not None and out.preds.dim() == 2:
        keys |= {"train/acc", "train/acc_epoch"}
    for e in out.extras or {}:
        keys |= {f"train/{e}", f"train/{e}_epoch"}
    if exp.data.sizes.get("val", 0) > 0:
        keys |= {"val/loss", *(f"val/{k}" for k in metric_names),
                 *(f"val/{e}" for e in out.extras or {})}  # fmt: skip
    return keys


def _check_monitors(exp: Any, keys: set[str], callbacks: list[Any]) -> None:
    t = exp.cfg.train
    named = [("train.monitor", t.monitor)]
    if t.monitor == "val/acc" and t.monitor not in keys:
        named = []  # the default on a task without accuracy: no best checkpoint, as before
    for i, cb in enumerate(callbacks):
        if isinstance(getattr(cb, "monitor", None), str):
            named.append((f"callbacks.{i}.monitor", cb.monitor))
    if exp.schedule is not None and exp.schedule.monitor:
        named.append(("sched.monitor", exp.schedule.monitor))
    for where, key in named:
        if key in keys or key.startswith("train/"):
            continue  # a task's own train/ extras are known only once it trains
        no_val = key.startswith("val/") and exp.data.sizes.get("val", 0) == 0
        why = " (the data has no validation split)" if no_val else did_you_mean(key, sorted(keys))
        shown = sorted(k for k in keys if k.startswith("val/")) or sorted(keys)
        raise ConfigError(
            f"{where}: '{key}' is not a metric this run logs{why}; logged: {', '.join(shown)}"
        )
    if (
        named
        and named[0][0] == "train.monitor"
        and t.monitor.endswith("loss")
        and (t.monitor_mode == "max")
    ):
        raise ConfigError(
            f"train.monitor: '{t.monitor}' is a loss but train.monitor_mode is max (the worst "
            "epoch would be kept as best): set train.monitor_mode=min"
        )


def _head(t: Any, device: torch.device) -> Any:
    """The first ``PREFLIGHT_SAMPLES`` samples of a batch part, on ``device``."""
    if isinstance(t, torch.Tensor):
        return t[:PREFLIGHT_SAMPLES].to(device)
    if isinstance(t, (tuple, list)):
        return type(t)(_head(v, device) for v in t)
    return t


def preflight(exp: Any, callbacks: list[Any] | None = None, monitors: bool = True) -> None:
    """Run one batch through ``exp``'s model, task loss and metrics, and check every monitored
    metric name (unless ``monitors`` is False), before training; a mismatch raises a one-line
    :class:`ConfigError`.

    >>> preflight(build_experiment(cfg), callbacks=build_callbacks(cfg))  # doctest: +SKIP
    """
    x, y = peek_batch(exp.data)
    # A slice is enough to check shapes, dtypes and sizes, and costs next to nothing (a whole
    # evaluation batch with TTA is ~2 s on this CPU for the default recipe).
    x, y = _head(x, exp.trainer.device), _head(y, exp.trainer.device)
    _check_task_fits_data(exp)
    with _rng_untouched():
        out = _forward(exp, (x, y))
        _check_outputs(exp, out, y)
        metric_names = _check_metrics(exp, out)
    if monitors:  # (not for evaluating a finished run: its monitors no longer matter)
        _check_monitors(exp, logged_keys(exp, metric_names, out), list(callbacks or []))
