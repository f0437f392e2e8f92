"""Helpers shared by the bench scripts (not a benchmark itself: running it prints nothing).

Imported as ``import _common`` (``python bench/x.py`` puts bench/ first on ``sys.path``). Kept
free of heavy imports at module level so that ``make bench``, which runs every ``bench/*.py``,
spends no time on this file.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RECIPE = ROOT / "recipes" / "fashion_mnist.yaml"


def sync(device: Any) -> None:
    """Wait for queued device work (CUDA), so that wall-clock timings mean something."""
    import torch

    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def spread(values: Sequence[float]) -> tuple[float, float, float]:
    """(median, lower quartile, upper quartile); with fewer than 3 values, (median, min, max)."""
    med = statistics.median(values)
    if len(values) < 3:
        return med, min(values), max(values)
    q = statistics.quantiles(values, n=4)
    return med, q[0], q[2]


def fmt_spread(values: Sequence[float], fmt: str = ".3f", unit: str = "") -> str:
    """``"12.3 s (IQR 11.9-12.8, n=5)"``: a median with its spread, for the tables."""
    med, lo, hi = spread(values)
    kind = "IQR" if len(values) >= 3 else "range"
    return f"{med:{fmt}}{unit} ({kind} {lo:{fmt}}-{hi:{fmt}}, n={len(values)})"


def split_recipe_args(args: Sequence[str]) -> tuple[str, list[str]]:
    """``[recipe] [key=value ...]`` → (recipe path, overrides); the recipe defaults to the
    default recipe."""
    rest = list(args)
    recipe = rest.pop(0) if rest and "=" not in rest[0] else str(RECIPE)
    return recipe, rest


class TestEachEpoch:
    """Callback: evaluates the test split after every epoch, keeping its own time off the clock.

    ``rows`` gets ``(epoch, wall_s, val_acc, test_acc)`` per epoch, ``wall_s`` counted from
    ``t0`` (a ``time.perf_counter()`` value) minus the time spent here. With ``stop_at``, the
    run stops (``state.should_stop``, a documented flag) at the first epoch whose test
    accuracy reaches it. Set ``exp`` (from ``build_experiment``) before training. With
    ``every_steps``, the test split is also scored every that many optimizer steps within an
    epoch (rows with a fractional epoch), so a target crossed mid-epoch is timed there.
    """

    __test__ = False  # not a pytest test class, whatever its name says

    def __init__(
        self, t0: float, stop_at: float | None = None, every_steps: int | None = None
    ) -> None:
        self.t0 = t0
        self.stop_at, self.every_steps = stop_at, every_steps
        self.exp: Any = None
        self.rows: list[tuple[float, float, float, float]] = []
        self.excluded = 0.0

    def on_batch_end(self, state: Any) -> None:
        at_epoch_end = state.batch >= state.steps_per_epoch  # on_epoch_end scores that one
        if self.every_steps and state.step % self.every_steps == 0 and not at_epoch_end:
            self._score(state, state.epoch + state.batch / state.steps_per_epoch)

    def on_epoch_end(self, state: Any) -> None:
        self._score(state, state.epoch)

    def _score(self, state: Any, epoch: float) -> None:
        now = time.perf_counter()
        wall = now - self.t0 - self.excluded
        exp = self.exp
        metrics = exp.task.metrics(exp.data.num_classes).to(exp.trainer.device)
        test = exp.trainer.evaluate(state.model, exp.task, exp.data.loader("test"), "test", metrics)
        val = state.metrics.get("val/acc", float("nan"))
        self.rows.append((epoch, wall, val, test["test/acc"]))
        if self.stop_at is not None and test["test/acc"] >= self.stop_at:
            state.should_stop = True
            state.stop_reason = f"test accuracy reached {self.stop_at:.4f} (bench)"
        self.excluded += time.perf_counter() - now

    def first_reaching(self, goal: float) -> float | None:
        """Wall seconds at the first epoch whose test accuracy is ≥ ``goal`` (None: never)."""
        return next((w for _, w, _, t in self.rows if t >= goal), None)


if __name__ == "__main__":
    pass  # a helper module: `make bench` runs every bench/*.py, this one measures nothing
