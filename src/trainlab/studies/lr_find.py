"""The learning-rate range test (Smith, 2015; fastai's ``lr_find``), through the one loop.

The rate grows exponentially from ``start`` to ``end`` over ``steps`` optimizer steps of
``Trainer.fit`` (a callback sets the rate after each step and records the loss); the test stops
when the smoothed loss exceeds ``diverge`` × its minimum. Three rules read the curve —
the steepest descent of the smoothed loss, fastai's "valley" and the minimum / 10 — and the
result says whether they agree. A curve that never falls, is dominated by noise, or whose rules
disagree by more than a decade is reported as unreliable, with the reason, instead of a number
that looks authoritative.

The test runs on a copy: a recipe gives a freshly built experiment; an experiment passed from
Python gets its model weights, optimizer state and the process's RNG back afterwards.

>>> res = lr_find("recipes/synthetic.yaml", ["train.precision=fp32"])  # doctest: +SKIP
>>> res.reliable, res.override                                          # doctest: +SKIP
(True, 'optim.lr=0.0085')
"""

from __future__ import annotations

import copy
import math
import random
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from trainlab.config.load import load_config
from trainlab.config.schema import Config
from trainlab.errors import ConfigError
from trainlab.experiment import Experiment, build_experiment
from trainlab.train.state import TrainState

__all__ = ["LRFindResult", "lr_find", "smooth", "suggest", "valley"]

# Rules whose suggestions are further apart than this (in decades) make the result unreliable.
AGREE_DECADES = 1.0
# A curve whose smoothed loss never falls below this share of its starting value shows no
# learning-rate region where training makes progress (e.g. labels without signal).
MIN_DROP = 0.05


@dataclass
class LRFindResult:
    """The curve, the rules' suggestions and the verdict. ``suggested`` is ``None`` when the
    result is unreliable; ``reasons`` says why."""

    lrs: list[float]
    losses: list[float]
    smoothed: list[float]
    suggestions: dict[str, float]
    suggested: float | None
    reliable: bool
    reasons: list[str] = field(default_factory=list)
    stopped: str = ""  # why the ramp ended before ``end`` (divergence), if it did
    recipe_lr: float | None = None
    override: str | None = None  # the recipe override to use, e.g. "optim.lr=0.03"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class _RangeTest:
    """Callback: exponential LR ramp, per-step loss record, stop at divergence."""

    def __init__(self, start: float, end: float, steps: int, beta: float, diverge: float):
        self.start, self.steps, self.beta, self.diverge = start, steps, beta, diverge
        self.factor = (end / start) ** (1.0 / max(steps - 1, 1))
        self.lrs: list[float] = []
        self.losses: list[float] = []
        self.smoothed: list[float] = []
        self.ratios: list[float] = []  # each param group's LR relative to group 0's
        self._avg, self._best = 0.0, math.inf
        self.stopped = ""

    def set_lr(self, optimizer: torch.optim.Optimizer, lr: float) -> None:
        for group, ratio in zip(optimizer.param_groups, self.ratios):
            group["lr"] = lr * ratio

    def on_fit_start(self, state: TrainState) -> None:
        base = float(state.optimizer.param_groups[0]["lr"]) or 1.0
        self.ratios = [float(g["lr"]) / base for g in state.optimizer.param_groups]
        self.set_lr(state.optimizer, self.start)

    def on_log(self, state: TrainState, values: dict[str, Any]) -> None:
        if "train/loss" not in values:  # epoch records and validation carry other keys
            return
        loss = float(values["train/loss"])
        self.lrs.append(float(values["lr"]))
        self.losses.append(loss)
        if not math.isfinite(loss):
            self.smoothed.append(math.inf)
            self.stopped = f"loss became non-finite at lr={self.lrs[-1]:.3g}"
            state.should_stop = True
            return
        # Exponential moving average with bias correction (fastai's smoothing).
        self._avg = self.beta * self._avg + (1 - self.beta) * loss
        smooth = self._avg / (1 - self.beta ** len(self.losses))
        self.smoothed.append(smooth)
        self._best = min(self._best, smooth)
        if len(self.losses) > 5 and smooth > self.diverge * self._best:
            self.stopped = (
                f"smoothed loss above {self.diverge:g}× its minimum at lr={self.lrs[-1]:.3g}"
            )
            state.should_stop = True

    def on_batch_end(self, state: TrainState) -> None:
        self.set_lr(state.optimizer, self.start * self.factor ** len(self.lrs))


class _NoValidation:
    """The data module seen by the range test: training split only (no epoch-end scoring)."""

    def __init__(self, data: Any) -> None:
        self._data = data
        self.sizes = {**data.sizes, "val": 0}

    def __getattr__(self, name: str) -> Any:
        return getattr(self._data, name)


def valley(lrs: list[float], losses: list[float]) -> float:
    """fastai's "valley" rule: the longest stretch over which the loss keeps falling; the rate
    two thirds of the way down it (``fastai.callback.schedule.valley``)."""
    n = len(losses)
    lds = [1] * n  # length of the longest decreasing subsequence ending at i
    max_start = max_end = 0
    for i in range(1, n):
        for j in range(i):
            if losses[i] < losses[j] and lds[i] < lds[j] + 1:
                lds[i] = lds[j] + 1
            if lds[max_end] < lds[i]:
                max_end, max_start = i, i - lds[i]
    sections = (max_end - max_start) / 3
    return lrs[max_start + int(sections) + int(sections / 2)]


def smooth(losses: list[float]) -> list[float]:
    """A centred moving average of the finite part of the curve (no lag, unlike the online
    average that decides when to stop): what the rules read. Window: ~1/12 of the points."""
    from scipy.ndimage import uniform_filter1d

    n = next((i for i, v in enumerate(losses) if not math.isfinite(v)), len(losses))
    if n == 0:
        return [math.inf] * len(losses)
    width = max(3, (n // 12) | 1)
    out = uniform_filter1d(np.asarray(losses[:n], dtype=float), width, mode="nearest")
    return [float(v) for v in out] + [math.inf] * (len(losses) - n)


def suggest(lrs: list[float], raw: list[float]) -> tuple[dict[str, float], list[str]]:
    """The three rules' suggestions and the reasons, if any, not to trust them."""
    sm_all = smooth(raw)
    finite = [i for i, s in enumerate(sm_all) if math.isfinite(s)]
    if len(finite) < 10:
        return {}, [f"only {len(finite)} finite points: the ramp diverged almost at once"]
    lr = np.array([lrs[i] for i in finite])
    sm = np.array([sm_all[i] for i in finite])
    rw = np.array([raw[i] for i in finite])
    lo = int(np.argmin(sm))
    first = float(sm[: max(3, len(sm) // 20)].mean())
    fall = first - float(sm[lo])
    # The descending stretch: from the last point still within 10 % of the total fall of the
    # starting level, down to the minimum. The flat, noisy start would otherwise dominate the
    # valley rule's longest decreasing run.
    top = max([i for i in range(lo + 1) if sm[i] >= first - 0.1 * fall] or [0])
    grads = np.gradient(sm, np.log10(lr))
    steep = top + int(np.argmin(grads[top : lo + 1])) if lo > top else lo
    rules = {
        "steepest": float(lr[steep]),
        "valley": float(valley(list(lr[top : lo + 1]), list(sm[top : lo + 1]))),
        "min_div_10": float(lr[lo] / 10),
    }
    return rules, _doubts(rules, first, sm, rw, lo, len(raw))


def _doubts(
    rules: dict[str, float], first: float, sm: np.ndarray, rw: np.ndarray, lo: int, n: int
) -> list[str]:
    """Why the suggestions should not be trusted: no fall, noise, disagreement, no minimum."""
    reasons = []
    fall = first - float(sm[lo])
    drop = fall / abs(first) if first else 0.0
    if drop < MIN_DROP:
        reasons.append(
            f"the smoothed loss fell by only {drop:.1%} from its start ({first:.4g} → "
            f"{sm[lo]:.4g}): no rate where training makes progress within the ramp (too few "
            "--steps for this model, or no signal in the labels)"
        )
    noise = float(np.std(rw[: lo + 1] - sm[: lo + 1])) if lo > 2 else 0.0
    if drop >= MIN_DROP and noise > 0.5 * fall:
        reasons.append(
            f"the loss is noisy: step-to-step spread {noise:.3g} against a fall of {fall:.3g} "
            "(try a larger data.batch_size or more --steps)"
        )
    spread = math.log10(max(rules.values()) / min(rules.values()))
    if spread > AGREE_DECADES:
        table = ", ".join(f"{k} {v:.2g}" for k, v in rules.items())
        reasons.append(f"the rules disagree by {spread:.1f} decades ({table})")
    if drop >= MIN_DROP and lo >= len(sm) - max(2, len(sm) // 20) and len(sm) == n:
        reasons.append("the loss was still falling at the end of the range: raise --end")
    return reasons


def lr_find(
    cfg: Config | str | Path | Experiment,
    overrides: list[str] | None = None,
    *,
    start: float = 1e-7,
    end: float = 10.0,
    steps: int = 100,
    beta: float = 0.9,
    diverge: float = 4.0,
    out: str | Path | None = None,
) -> LRFindResult:
    """Run the LR range test on a recipe (or a built experiment) and read its curve.

    With ``out``, writes ``lr_find.json`` and ``lr_find.png`` there.
    """
    if not 0 < start < end:
        raise ConfigError(f"lr-find: need 0 < start < end, got start={start:g} end={end:g}")
    if steps < 10:
        raise ConfigError(f"lr-find: --steps must be at least 10, got {steps}")
    rng = (torch.get_rng_state(), np.random.get_state(), random.getstate())
    if isinstance(cfg, Experiment):
        exp, saved = cfg, _save(cfg)
    else:
        conf = cfg if isinstance(cfg, Config) else load_config(cfg, overrides)
        exp, saved = build_experiment(conf), None
    try:
        test = _ramp(exp, start, end, steps, beta, diverge)
    finally:
        if saved is not None:
            _load(exp, saved)
        torch.set_rng_state(rng[0])
        np.random.set_state(rng[1])
        random.setstate(rng[2])
    result = _result(exp.cfg, test)
    if out is not None:
        write(result, Path(out))
    return result


def _ramp(
    exp: Experiment, start: float, end: float, steps: int, beta: float, diverge: float
) -> _RangeTest:
    """``Trainer.fit`` with the ramp callback, one logged loss per step, no schedule."""
    test = _RangeTest(start, end, steps, beta, diverge)
    trainer = copy.copy(exp.trainer)  # the experiment's trainer keeps its own settings
    per_epoch = max(len(exp.data.loader("train")) // trainer.accumulate, 1)
    trainer.epochs, trainer.max_steps = -(-steps // per_epoch), steps
    trainer.log_every, trainer.callbacks = 1, [test]
    trainer.nan_policy = "stop"
    trainer.fit(exp.model, exp.task, _NoValidation(exp.data), exp.optimizer, None)  # type: ignore[arg-type]
    return test


def _result(cfg: Config, test: _RangeTest) -> LRFindResult:
    rules, reasons = suggest(test.lrs, test.losses)
    if test.lrs and not test.stopped and len(test.lrs) < 10:
        reasons.append("fewer than 10 steps were taken")
    reliable = bool(rules) and not reasons
    chosen = rules.get("valley") if reliable else None
    key = "sched.max_lr" if cfg.sched is not None and cfg.sched.name == "onecycle" else "optim.lr"
    recipe_lr = cfg.optim.options().get("lr")
    return LRFindResult(
        lrs=test.lrs, losses=test.losses, smoothed=smooth(test.losses), suggestions=rules,
        suggested=chosen, reliable=reliable, reasons=reasons, stopped=test.stopped,
        recipe_lr=float(recipe_lr) if isinstance(recipe_lr, (int, float)) else None,
        override=f"{key}={chosen:.3g}" if chosen is not None else None,
    )  # fmt: skip


def _save(exp: Experiment) -> dict[str, Any]:
    return {
        "model": copy.deepcopy(exp.model.state_dict()),
        "optimizer": copy.deepcopy(exp.optimizer.state_dict()),
    }


def _load(exp: Experiment, saved: dict[str, Any]) -> None:
    exp.model.load_state_dict(saved["model"])
    exp.optimizer.load_state_dict(saved["optimizer"])


def write(result: LRFindResult, out: Path) -> tuple[Path, Path]:
    """``lr_find.json`` (the whole result, non-finite losses as null) and ``lr_find.png``."""
    import json

    out.mkdir(parents=True, exist_ok=True)
    data = result.as_dict()
    for key in ("losses", "smoothed"):
        data[key] = [v if math.isfinite(v) else None for v in data[key]]
    (out / "lr_find.json").write_text(json.dumps(data, indent=1))
    return out / "lr_find.json", plot(result, out / "lr_find.png")


def plot(result: LRFindResult, path: Path) -> Path:
    """Loss against learning rate (log axis), raw and smoothed, with the rules' suggestions."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2))
    finite = [(lr, r, s) for lr, r, s in zip(result.lrs, result.losses, result.smoothed)
              if math.isfinite(r) and math.isfinite(s)]  # fmt: skip
    if finite:
        lrs, raw, sm = zip(*finite)
        ax.plot(lrs, raw, color="0.75", lw=0.8, label="loss per step")
        ax.plot(lrs, sm, color="C0", lw=1.8, label="smoothed")
        top = sm[0] * 1.5 if sm[0] > 0 else max(sm)
        ax.set_ylim(min(sm) - 0.05 * abs(min(sm)), max(top, min(sm) * 1.1))
    for i, (rule, lr) in enumerate(result.suggestions.items()):
        ax.axvline(lr, color=f"C{i + 1}", ls="--", lw=1, label=f"{rule}: {lr:.2g}")
    if result.recipe_lr:
        ax.axvline(result.recipe_lr, color="k", ls=":", lw=1, label=f"recipe: {result.recipe_lr:g}")
    ax.set_xscale("log")
    ax.set_xlabel("learning rate")
    ax.set_ylabel("training loss")
    verdict = "reliable" if result.reliable else "UNRELIABLE"
    ax.set_title(f"LR range test ({verdict})")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
