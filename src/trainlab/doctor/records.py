"""``trainlab doctor RUN_DIR``: diagnose a finished or stopped run from its own files.

Reads ``metrics.jsonl``, ``norms.jsonl``, ``summary.json``, ``eval_test.json`` and
``config.yaml`` (through :func:`trainlab.reports.rundata.load_run`); writes nothing. Rules:
divergence, loss spikes, no learning (LR too low, or labels without signal), overfitting,
underfitting, vanishing/exploding gradients and dead layers over time, failing classes, class
imbalance judged by accuracy, validation that leaks training, a schedule that never warmed up,
a run stopped by its patience.

>>> diag = diagnose_run("runs/synthetic-20250101-120000")   # doctest: +SKIP
>>> [f.cause for f in diag.findings]                          # doctest: +SKIP
['overfitting']
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from trainlab.doctor import run_rules
from trainlab.doctor.findings import Diagnosis, Finding
from trainlab.doctor.model_checks import DoctorInputError
from trainlab.reports.rundata import RunData, load_run

__all__ = ["RunView", "diagnose_run", "diagnose_loaded"]

# Adversarial and sampling objectives: their logged loss may rise while training goes well.
NOT_MINIMISED = ("gan", "adversarial_autoencoder", "contrastive_divergence")


class RunView:
    """The run's series, read once, in the shapes the rules need."""

    def __init__(self, run: RunData, norms: list[dict[str, Any]]) -> None:
        self.run, self.norms = run, norms
        self.config = run.config or {}
        self.summary = run.summary or {}
        self.test = run.test or {}
        self.steps, self.loss = _finite_pairs(run, "train/loss", "step")
        self.nan_steps = [r.get("step") for r in run.records if _non_finite(r.get("train/loss"))]
        _, self.lr_series = run.series("lr", "step")
        self.epochs = self.series("val/loss")[0]

    def series(self, key: str) -> tuple[list[float], list[float]]:
        return _finite_pairs(self.run, key, "epoch")

    def last(self, key: str) -> float | None:
        vals = self.series(key)[1]
        return vals[-1] if vals else None

    @property
    def num_classes(self) -> int | None:
        k = (self.config.get("model") or {}).get("num_classes")
        if isinstance(k, int):
            return k
        per = self.test.get("test/acc_per_class")
        return len(per) if isinstance(per, list) else None

    @property
    def minimised(self) -> bool:
        """False for tasks whose logged loss is not one objective driven down (a GAN's
        generator loss rises as its discriminator improves)."""
        task = (self.config.get("task") or {}).get("name", "classification")
        return task not in NOT_MINIMISED

    @property
    def classify(self) -> bool:
        return (self.config.get("task") or {}).get("name", "classification") == "classification"

    @property
    def lr(self) -> float | None:
        lr = (self.config.get("optim") or {}).get("lr")
        return float(lr) if isinstance(lr, (int, float)) else None

    @property
    def optim_name(self) -> str:
        return str((self.config.get("optim") or {}).get("name", ""))

    @property
    def sched(self) -> dict[str, Any] | None:
        s = self.config.get("sched")
        return s if isinstance(s, dict) else None

    @property
    def monitor(self) -> str:
        return str((self.config.get("train") or {}).get("monitor", "val/acc"))


def _non_finite(v: Any) -> bool:
    return isinstance(v, float) and not math.isfinite(v)


def _finite_pairs(run: RunData, key: str, x: str) -> tuple[list[float], list[float]]:
    xs, ys = run.series(key, x)
    pairs = [(a, b) for a, b in zip(xs, ys, strict=True) if math.isfinite(b)]
    return [a for a, _ in pairs], [b for _, b in pairs]


def diagnose_run(run_dir: str | Path) -> Diagnosis:
    """Findings about the run in ``run_dir``, ranked; the run's files are only read.

    Raises :class:`DoctorInputError` for a folder without training records.
    """
    from trainlab.reports.insight import read_norms

    run = load_run(run_dir)  # raises a one-line error for a folder that is not a run
    if not run.records:
        raise DoctorInputError(
            f"{run_dir}: no training records (metrics.jsonl is missing or empty): nothing to "
            "diagnose"
        )
    return diagnose_loaded(run, read_norms(run_dir), str(run_dir))


def diagnose_loaded(run: RunData, norms: list[dict[str, Any]], target: str = "") -> Diagnosis:
    """The rules on a run already read (``report.html`` uses this: no second read)."""
    view = RunView(run, norms)
    found: list[Finding] = []
    for rule in run_rules.RULES:
        found += rule(view)
    return Diagnosis(target or str(run.path), "run", _explained(found))


# A validation at chance or a flat loss is what these causes produce: reported once, as them.
_EXPLAINS = {"lr_too_high": ("no_label_signal", "plateau"),
             "vanishing_gradients": ("no_label_signal", "plateau")}  # fmt: skip


def _explained(found: list[Finding]) -> list[Finding]:
    hidden = {c for f in found if f.severity != "info" for c in _EXPLAINS.get(f.cause, ())}
    return [f for f in found if f.cause not in hidden]
