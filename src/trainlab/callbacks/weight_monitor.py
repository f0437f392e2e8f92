"""Weight monitoring: per-layer L2 norms of the weights and of their gradients over training.

Exploding or vanishing gradients, a layer whose weights stop moving, weights that grow
without bound: all show in these two numbers per layer, long before the loss says so.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

from trainlab.callbacks.base import register_callback
from trainlab.tracking.grads import StepGrads
from trainlab.tracking.jsonl import truncate_after
from trainlab.train.distributed import is_main
from trainlab.train.state import TrainState

__all__ = ["WeightMonitor", "layer_norms"]

FILENAME = "norms.jsonl"


def layer_of(param_name: str) -> str:
    """The layer (module path) a parameter belongs to: ``"fc1.weight"`` → ``"fc1"``; a
    parameter held by the model itself (a ViT's ``cls_token``) is a layer of its own.

    >>> layer_of("features.0.weight"), layer_of("cls_token")
    ('features.0', 'cls_token')
    """
    layer, dot, _ = param_name.rpartition(".")
    return layer if dot else param_name


def layer_norms(
    model: nn.Module, grads: StepGrads | None = None
) -> tuple[dict[str, float], dict[str, float]]:
    """Per-layer L2 norms ``(weights, gradients)`` over each layer's own parameters (weight
    and bias together); layers without a gradient are left out of the second. One host sync.

    >>> w, g = layer_norms(nn.Sequential(nn.Linear(2, 1)))
    >>> list(w), g
    (['0'], {})
    """
    names: list[tuple[str, str]] = []  # (kind, layer) of each squared norm below
    squares: list[torch.Tensor] = []
    for name, p in model.named_parameters():
        layer = layer_of(name)
        squares.append(torch.linalg.vector_norm(p.detach().float()).square())
        names.append(("weight", layer))
        g = grads.grad(name, p) if grads is not None else p.grad
        if g is not None:
            squares.append(torch.linalg.vector_norm(g.detach().float()).square())
            names.append(("grad", layer))
    if not squares:
        return {}, {}
    values = torch.stack([s.to(squares[0].device) for s in squares]).tolist()  # the one sync
    out: dict[str, dict[str, float]] = {"weight": {}, "grad": {}}
    for (kind, layer), v in zip(names, values):
        out[kind][layer] = out[kind].get(layer, 0.0) + v
    return (
        {k: v**0.5 for k, v in out["weight"].items()},
        {k: v**0.5 for k, v in out["grad"].items()},
    )


@register_callback("weight_monitor")
class WeightMonitor:
    """Every ``every`` optimizer steps (and once before training), the L2 norm of each layer's
    weights and of the gradient the optimizer used (accumulated, unscaled, clipped).

    Records go to ``records`` and, as one JSON line each, to ``path`` (default
    ``<run dir>/norms.jsonl``): ``{"step": 200, "epoch": 1, "weight": {"fc1": 3.1, …},
    "grad": {"fc1": 0.02, …}}``. The report plots them. Only the logged steps pay: no host
    sync on other steps. Under torchrun only rank 0 writes.

    From a recipe: ``callbacks: [{name: weight_monitor, every: 50}]`` (runs have one by
    default, every ``train.hist_every`` steps; see ``train.norms``). From Python:

    >>> from trainlab import train_run
    >>> from trainlab.callbacks import WeightMonitor
    >>> wm = WeightMonitor(every=10)
    >>> train_run("recipes/synthetic.yaml", extra_callbacks=[wm])   # doctest: +SKIP
    >>> wm.records[-1]["grad"]                                      # doctest: +SKIP
    {'net.0': 0.41, 'net.2': 0.17}
    """

    def __init__(self, *, every: int = 100, path: str | None = None) -> None:
        self.every = every
        self.path = Path(path) if path else None
        self.records: list[dict[str, Any]] = []
        self._grads = StepGrads(every)  # raises for every < 1
        self._file: Any = None
        self._active = True

    def on_fit_start(self, state: TrainState) -> None:
        self._active = is_main()  # every rank holds the same (all-reduced) gradients
        if not self._active:
            return
        if self.path is None and state.run_dir is not None:
            self.path = Path(state.run_dir) / FILENAME
        # A resumed (or rolled-back) run logs the steps after its checkpoint again.
        self.records = [r for r in self.records if r["step"] <= state.step]
        if self.path is not None:
            if state.step > 0:
                truncate_after(self.path, state.step)
            self._file = open(self.path, "a", buffering=1)  # line-buffered: crash loses ≤ 1
        if state.step == 0 and not self.records:
            self._record(state)  # the weights before training
        self._grads.start(state.model, state.step)

    def on_batch_end(self, state: TrainState) -> None:
        if not self._active:
            return
        if state.step % self.every == 0:
            self._record(state)
        self._grads.advance(state.model, state.step)

    def on_fit_end(self, state: TrainState) -> None:
        self.close()

    def on_exception(self, state: TrainState, exc: BaseException) -> None:
        self.close()

    def close(self) -> None:
        self._grads.close()
        if self._file is not None:
            self._file.close()
            self._file = None

    def _record(self, state: TrainState) -> None:
        weight, grad = layer_norms(state.model, self._grads)
        record = {"step": state.step, "epoch": state.epoch, "weight": weight, "grad": grad}
        self.records.append(record)
        if self._file is not None:
            self._file.write(json.dumps(record) + "\n")
