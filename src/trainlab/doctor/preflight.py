"""``trainlab doctor RECIPE``: a pre-flight check that trains nothing to completion.

Builds the recipe's experiment with the same builders as ``trainlab train``, then runs the data,
model, optimisation and machine rules on it. Every check that changes the model or optimizer
works on state that is put back afterwards; torch's thread count is restored at the end.

>>> diag = preflight("recipes/synthetic.yaml")   # doctest: +SKIP
>>> [f.rule for f in diag.warnings]              # doctest: +SKIP
[]
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

from trainlab.config.load import load_config
from trainlab.config.schema import Config
from trainlab.doctor import data_checks, machine_checks, model_checks, optim_checks
from trainlab.doctor.findings import Diagnosis, Finding

__all__ = ["preflight", "CHECKS"]

CHECKS = ("data", "model", "gradcheck", "overfit", "lr", "machine")
# Tasks whose objective the optimisation checks (overfit one batch, LR range test) understand.
OPTIM_TASKS = ("classification", "regression")
MIN_LR_STEPS = 20  # fewer range-test steps than this cannot locate a valley


@contextmanager
def _threads_kept() -> Iterator[int]:
    n = torch.get_num_threads()
    try:
        yield n
    finally:
        torch.set_num_threads(n)


def _load(recipe: Config | str | Path, overrides: list[str] | None) -> Config:
    if isinstance(recipe, Config):
        if overrides:
            from trainlab.config.load import apply_overrides, parse_config

            return parse_config(apply_overrides(recipe.model_dump(mode="json"), overrides))
        return recipe
    return load_config(recipe, overrides)


def preflight(
    recipe: Config | str | Path,
    overrides: list[str] | None = None,
    *,
    skip: tuple[str, ...] = (),
    lr_steps: int = 60,
    overfit_steps: int = 200,
    budget_s: float = 20.0,
) -> Diagnosis:
    """Diagnose a recipe before training it: data, model, optimisation, machine.

    ``skip`` names checks of :data:`CHECKS` to leave out (``("lr",)`` saves the range test).
    ``budget_s`` bounds the LR range test (fewer steps, at least 20, or skipped with the
    reason when a step is too slow); overfitting one batch gets half of it.
    Raises a :class:`~trainlab.errors.TrainlabError` for a recipe that does not validate or a
    model whose forward fails on the data.

    >>> diag = preflight("recipes/synthetic.yaml", skip=("lr",))   # doctest: +SKIP
    >>> diag.top is None or diag.top.severity == "info"            # doctest: +SKIP
    True
    """
    from trainlab.experiment import build_experiment, check_config

    cfg = _load(recipe, overrides)
    check_config(cfg)
    name = str(recipe) if not isinstance(recipe, Config) else cfg.name
    found: list[Finding] = []
    timings: dict[str, float] = {}
    skipped: dict[str, str] = {}
    with _threads_kept() as default_threads:
        found += machine_checks.check_threads(cfg, default_threads)
        # Build with at most one thread per core: a recipe asking for more would slow the
        # doctor itself down as much as its training.
        safe = cfg.model_copy(deep=True)
        if safe.train.threads and safe.train.threads > machine_checks.cores():
            safe.train.threads = machine_checks.cores()
        t0 = time.perf_counter()
        exp = build_experiment(safe)
        timings["build"] = time.perf_counter() - t0
        runner = _Runner(exp, cfg, skip, timings, skipped)
        runner.budget_s = budget_s
        found += runner.run_all(lr_steps, overfit_steps)
    return Diagnosis(name, "recipe", found, timings, skipped)


class _Runner:
    """Runs the checks on one built experiment, timing each and restoring its state."""

    def __init__(self, exp: Any, cfg: Config, skip: tuple[str, ...], timings: dict[str, float],
                 skipped: dict[str, str]) -> None:  # fmt: skip
        self.exp, self.cfg, self.skip = exp, cfg, skip
        self.timings, self.skipped = timings, skipped
        self.saved = {
            "model": copy.deepcopy(exp.model.state_dict()),
            "optim": copy.deepcopy(exp.optimizer.state_dict()),
        }
        x, y = next(iter(exp.data.loader("train").iter_epoch(0)))
        self.batch = (x[:64], y[:64])
        self.optim_ok = cfg.task.name in OPTIM_TASKS
        self.fitted: bool | None = None  # set by the overfit check
        self.budget_s = 20.0
        if callable(getattr(exp.task, "setup", None)):
            exp.task.setup(exp.model, exp.trainer.device)

    def restore(self) -> None:
        self.exp.model.load_state_dict(self.saved["model"])
        self.exp.optimizer.load_state_dict(self.saved["optim"])

    def timed(self, name: str, fn: Callable[[], list[Finding]]) -> list[Finding]:
        if name in self.skip:
            self.skipped[name] = "skipped on request"
            return []
        t0 = time.perf_counter()
        try:
            return fn()
        finally:
            self.timings[name] = time.perf_counter() - t0
            self.restore()

    def run_all(self, lr_steps: int, overfit_steps: int) -> list[Finding]:
        exp = self.exp
        found = self.timed("data", lambda: data_checks.check_data(self.cfg, exp.data))
        probe = model_checks.probe(exp.model, exp.task, self.batch)  # raises on a bad forward
        self.restore()
        classify = self.cfg.task.name == "classification"
        found += self.timed("model", lambda: model_checks.check_model(
            probe, exp.data.num_classes, classify, self.optim_ok))  # fmt: skip
        found += self.timed("gradcheck", lambda: self._gradcheck(probe))
        if self.optim_ok:
            found += self.timed("overfit", lambda: self._overfit(overfit_steps))
            found += self.timed("lr", lambda: self._lr(lr_steps))
        else:
            for name in ("overfit", "lr"):
                self.skipped[name] = f"not defined for task '{self.cfg.task.name}'"
        found += self.timed("machine", self._machine)
        return found

    def _gradcheck(self, probe: model_checks.ForwardProbe) -> list[Finding]:
        found, checked = model_checks.gradcheck_modules(self.exp.model, probe)
        if checked and not found:
            found = [Finding(
                "model.gradcheck", "gradcheck_passed", "info", 0.1,
                f"numerical gradient check passed for {checked} non-stock module(s)",
                {"checked": checked}, "their backward agrees with finite differences",
            )]  # fmt: skip
        return found

    def _overfit(self, steps: int) -> list[Finding]:
        x, y = self.batch
        batch = (x[:32], y[:32])
        result = optim_checks.overfit_batch(self.exp, batch, steps, max_seconds=self.budget_s / 2)
        self.fitted = result.fitted
        if result.timed_out:
            self.skipped["overfit"] = (
                f"inconclusive: not fitted after {result.steps} steps in {result.seconds:.0f} s"
            )
        return optim_checks.check_overfit(self.cfg, result, len(batch[0]))

    def _lr(self, steps: int) -> list[Finding]:
        try:
            from trainlab.studies.lr_find import lr_find
        except ImportError:
            self.skipped["lr"] = "the LR finder (trainlab.studies.lr_find) is not installed"
            return []
        per_step = self.step_s()
        steps = min(steps, int(self.budget_s / per_step))
        if steps < MIN_LR_STEPS:
            self.skipped["lr"] = (
                f"a training step takes {per_step:.2f} s here: too slow for a range test in "
                f"{self.budget_s:.0f} s (run `trainlab lr-find RECIPE`)"
            )
            return []
        result = lr_find(self.exp, steps=steps)
        return optim_checks.check_lr(self.cfg, result, self.fitted)

    def step_s(self) -> float:
        """Seconds of one training step on a full batch (measured once)."""
        if "step_s" not in self.timings:
            batch = next(iter(self.exp.data.loader("train").iter_epoch(0)))
            self.timings["step_s"] = optim_checks.step_seconds(self.exp, batch)
        return self.timings["step_s"]

    def _machine(self) -> list[Finding]:
        return [
            *machine_checks.check_precision(self.exp),
            *machine_checks.check_input_pipeline(self.exp, self.step_s),
        ]
