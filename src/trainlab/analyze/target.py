"""What ``trainlab analyze`` measures: a model, inputs at any batch size, a loss, an optimizer.

A :class:`Target` comes either from a registered model name (inputs from the model's
``example_input``, a surrogate loss, SGD with momentum unless told otherwise) or from a
recipe (the recipe's model, optimizer, precision and device exactly as ``build_experiment`` builds
them, inputs tiled from the first real training batch, the task's own loss).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import yaml
from torch import nn

from trainlab.errors import ConfigError, TrainlabError

__all__ = [
    "Sample",
    "Target",
    "model_target",
    "recipe_target",
    "resolve_target",
    "parse_options",
    "parse_shape",
    "parse_size",
    "surrogate_loss",
]


@dataclass
class Sample:
    """One batch: ``inputs`` are the positional arguments of ``model.forward`` (batch first),
    ``target`` the recipe's labels (None for a bare model, whose loss needs none)."""

    inputs: tuple[torch.Tensor, ...]
    target: torch.Tensor | None = None


@dataclass
class Target:
    """A model with everything needed to run it forward and to train it one step.

    >>> t = model_target("mlp", {"in_features": 16, "hidden": [8]}, device="cpu")
    >>> t.make_sample(4).inputs[0].shape
    torch.Size([4, 16])
    """

    name: str
    kind: str  # "model" or "recipe"
    model: nn.Module
    optimizer: torch.optim.Optimizer
    device: torch.device
    make_sample: Callable[[int], Sample]
    loss: Callable[[nn.Module, Sample], torch.Tensor]
    autocast: Callable[[], AbstractContextManager[Any]] = contextlib.nullcontext
    precision: str = "fp32"
    batch_size: int = 32  # the batch a run would use: the recipe's, or 32 for a bare model
    notes: list[str] = field(default_factory=list)

    def train_step(self, sample: Sample) -> None:
        """One optimizer step, in the order the trainer runs it (forward, backward, step)."""
        self.model.train()
        with self.autocast():
            loss = self.loss(self.model, sample)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()

    def forward(self, sample: Sample) -> Any:
        """One inference forward (eval mode, no autograd graph)."""
        self.model.eval()
        with torch.no_grad(), self.autocast():
            return self.model(*sample.inputs)

    def sync(self) -> None:
        """Wait for queued device work, so that wall-clock timings mean something on CUDA."""
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)


def _floating_outputs(out: Any) -> list[torch.Tensor]:
    # Models return a tensor, a tuple (VAE: recon, mu, logvar) or a dict; collect every tensor.
    if isinstance(out, torch.Tensor):
        return [out] if out.is_floating_point() else []
    if isinstance(out, (tuple, list)):
        return [t for o in out for t in _floating_outputs(o)]
    if isinstance(out, dict):
        return [t for o in out.values() for t in _floating_outputs(o)]
    return []


def surrogate_loss(out: Any) -> torch.Tensor:
    """A scalar that depends on every floating output: the sum of their means.

    A bare model has no labels; the backward pass costs the same whatever scalar starts it,
    so the mean stands in for a real loss (its own cost, one reduction, is negligible).

    >>> surrogate_loss((torch.ones(2, 3), torch.zeros(2))).item()
    1.0
    """
    outs = _floating_outputs(out)
    if not outs:
        raise TrainlabError("the model returned no floating-point tensor to backpropagate from")
    return torch.stack([o.float().mean() for o in outs]).sum()


def parse_options(items: Sequence[str]) -> dict[str, Any]:
    """``["hidden=[32, 16]", "act=gelu"]`` → ``{"hidden": [32, 16], "act": "gelu"}`` (YAML values).

    >>> parse_options(["hidden=[32]", "dropout=0.1"])
    {'hidden': [32], 'dropout': 0.1}
    """
    out: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--opt '{item}': expected key=value")
        try:
            out[key.strip()] = yaml.safe_load(text) if text.strip() else None
        except yaml.YAMLError:
            out[key.strip()] = text
    return out


def parse_shape(text: str) -> tuple[int, ...]:
    """``"3,224,224"`` → ``(3, 224, 224)``: the shape of one sample, without the batch.

    >>> parse_shape("1, 28, 28")
    (1, 28, 28)
    """
    try:
        shape = tuple(int(p) for p in text.replace("x", ",").split(",") if p.strip())
    except ValueError:
        shape = ()
    if not shape or any(d < 1 for d in shape):
        raise ConfigError(f"--input '{text}': expected positive sizes such as 3,224,224")
    return shape


_UNITS = {"": 1, "b": 1, "k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40}


def parse_size(text: str) -> int:
    """``"2GiB"``, ``"512MB"``, ``"1.5g"`` or ``"1000000"`` → bytes (K/M/G are powers of 1024).

    >>> parse_size("512MiB"), parse_size("2G"), parse_size("1000")
    (536870912, 2147483648, 1000)
    """
    t = text.strip().lower().replace("ib", "").rstrip("b")
    number, unit = (t[:-1], t[-1]) if t and t[-1] in _UNITS else (t, "")
    try:
        value = float(number) * _UNITS[unit]
    except ValueError:
        value = -1.0
    if value <= 0:
        raise ConfigError(f"--memory-budget '{text}': expected a size such as 8GiB or 512MB")
    return int(value)


def _device(name: str) -> torch.device:
    from trainlab.train.precision import resolve_device

    return resolve_device(name)


def _model_samples(
    model: nn.Module, name: str, shape: tuple[int, ...], dev: torch.device
) -> Callable[[int], Sample]:
    """Batches from the model's ``example_input``, or random (N, *shape) when a shape is given."""
    from trainlab.models import example_input

    if not shape:
        try:
            example_input(model, 1, name)
        except TypeError:
            raise TrainlabError(
                f"model '{name}' declares no example input; give its input with --input C,H,W"
            ) from None

    def make_sample(batch: int) -> Sample:
        if shape:
            return Sample((torch.randn(batch, *shape, device=dev),))
        return Sample(tuple(t.to(dev) for t in example_input(model, batch, name)))

    return make_sample


def model_target(
    name: str,
    options: dict[str, Any] | None = None,
    *,
    input_shape: Sequence[int] | None = None,
    device: str = "auto",
    precision: str = "fp32",
    optim: str = "sgd",
    optim_options: dict[str, Any] | None = None,
) -> Target:
    """A registered model by name, with its example input (or random ``input_shape`` samples).

    The default optimizer is the recipes' default, SGD with momentum 0.9 (state: 1× the weights).

    >>> t = model_target("lenet5", device="cpu")
    >>> tuple(t.make_sample(2).inputs[0].shape)
    (2, 1, 28, 28)
    """
    from trainlab.models import create_model
    from trainlab.optim import build_optimizer
    from trainlab.train.precision import autocast, resolve_precision

    dev = _device(device)
    prec = resolve_precision(precision, dev)
    model = create_model(name, **(options or {})).to(dev)
    make_sample = _model_samples(model, name, tuple(input_shape or ()), dev)
    opts = {"lr": 0.1, "momentum": 0.9} if optim == "sgd" and optim_options is None else {}
    opts.update(optim_options or {})
    optimizer = build_optimizer(model, optim, opts)
    return Target(
        name=name,
        kind="model",
        model=model,
        optimizer=optimizer,
        device=dev,
        make_sample=make_sample,
        loss=lambda m, s: surrogate_loss(m(*s.inputs)),
        autocast=autocast(prec, dev),
        precision=prec,
        notes=["training figures use a surrogate loss (mean of the outputs): no labels needed"],
    )


def recipe_target(
    path: str | Path, overrides: Sequence[str] = (), *, device: str | None = None
) -> Target:
    """The recipe's model, optimizer, precision and data exactly as ``trainlab train`` builds them.

    Batches of any size are the first real training batch repeated (its samples cycled).

    >>> t = recipe_target("recipes/fashion_mnist.yaml")   # doctest: +SKIP
    """
    from trainlab.config.load import load_config
    from trainlab.experiment import build_experiment

    extra = [f"train.device={device}"] if device else []
    cfg = load_config(path, [*overrides, *extra])
    exp = build_experiment(cfg)
    x0, y0 = next(iter(exp.data.loader("train").iter_epoch(0)))  # (N, *input_shape), (N, ...)
    if hasattr(x0, "graph"):  # node classification: every batch is the whole graph
        opts = " ".join(f"--opt {k}={v}" for k, v in exp.model_options.items())
        raise ConfigError(
            f"analyze: recipe {path} trains on one graph (data '{cfg.data.name}'), a whole graph "
            f"per batch, so batch sizes do not apply; analyze the model on a graph of B nodes: "
            f"trainlab analyze {cfg.model.name} {opts} --batch B"
        )
    channels_last = exp.trainer.channels_last

    def make_sample(batch: int) -> Sample:
        idx = torch.arange(batch, device=x0.device) % len(x0)
        x = x0[idx]
        if channels_last and x.dim() == 4:  # the trainer feeds NHWC batches to NHWC models
            x = x.contiguous(memory_format=torch.channels_last)
        return Sample((x,), y0[idx])

    def loss(model: nn.Module, s: Sample) -> torch.Tensor:
        assert s.target is not None  # recipe samples always carry labels
        return exp.task.train_step(model, (s.inputs[0], s.target)).loss

    return Target(
        name=cfg.name if cfg.name != "run" else Path(path).stem,
        kind="recipe",
        model=exp.model,
        optimizer=exp.optimizer,
        device=exp.trainer.device,
        make_sample=make_sample,
        loss=loss,
        autocast=exp.trainer.autocast,
        precision=exp.trainer.precision,
        batch_size=len(x0),
        notes=[f"recipe {path}: model '{cfg.model.name}', optimizer '{cfg.optim.name}'"],
    )


def is_recipe(spec: str) -> bool:
    """A path to an existing file, or anything ending in .yaml/.yml, names a recipe."""
    return Path(spec).is_file() or spec.endswith((".yaml", ".yml"))


def resolve_target(
    spec: str,
    opts: Sequence[str] = (),
    *,
    input_shape: str | None = None,
    device: str | None = None,
    precision: str = "fp32",
    optim: str = "sgd",
) -> Target:
    """``spec`` is a model name (``--opt`` are model options) or a recipe (``--opt`` are dotted
    overrides such as ``model.hidden=[64]``).

    >>> resolve_target("mlp", ["hidden=[16]"], device="cpu").name
    'mlp'
    """
    if is_recipe(spec):
        if input_shape is not None:
            raise ConfigError("--input: a recipe takes its input shape from its data")
        return recipe_target(spec, list(opts), device=device)
    shape = parse_shape(input_shape) if input_shape is not None else None
    return model_target(
        spec,
        parse_options(opts),
        input_shape=shape,
        device=device or "auto",
        precision=precision,
        optim=optim,
    )
