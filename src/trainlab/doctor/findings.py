"""What the doctor reports: findings (symptom, evidence, cause, fix) and their ranking.

A :class:`Finding` is one rule that fired. ``severity`` orders findings first (``error`` before
``warning`` before ``info``), ``score`` (0..1: how strong and how specific the evidence is)
orders them within a severity, so the most likely cause comes first. ``fix`` holds recipe
overrides (``optim.lr=0.01``) that :func:`apply_fixes` writes into a fixed recipe.

>>> f = Finding("run.diverged", "lr_too_high", "error", 0.9, "loss became NaN at step 40",
...             {"step": 40}, "learning rate too high", ["optim.lr=0.01"])
>>> Diagnosis("runs/x", "run", [f]).top.cause
'lr_too_high'
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from trainlab.config.load import apply_overrides, parse_config
from trainlab.config.schema import Config
from trainlab.errors import TrainlabError

__all__ = [
    "Finding", "Diagnosis", "SEVERITIES", "apply_fixes", "valid_fixes", "num",
    "gradient_ratio", "VANISH", "EXPLODE",
]  # fmt: skip

Severity = Literal["error", "warning", "info"]
SEVERITIES: tuple[Severity, ...] = ("error", "warning", "info")


@dataclass
class Finding:
    """One rule that fired.

    ``rule``: where it comes from (``data.leakage``, ``run.overfitting``); ``cause``: the
    likely cause as a short key (``leakage``, ``lr_too_high``) shared by the rules that point to
    the same cause; ``evidence``: the figures, JSON-able; ``fix``: recipe overrides, possibly
    empty when no override can fix it (``note`` then says what to do).
    """

    rule: str
    cause: str
    severity: Severity
    score: float
    symptom: str
    evidence: dict[str, Any]
    explanation: str
    fix: list[str] = field(default_factory=list)
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        return _jsonable(asdict(self))


@dataclass
class Diagnosis:
    """The findings about one recipe (``kind="recipe"``) or run (``kind="run"``), ranked."""

    target: str
    kind: Literal["recipe", "run"]
    findings: list[Finding]
    checks: dict[str, float] = field(default_factory=dict)  # check name → seconds taken
    skipped: dict[str, str] = field(default_factory=dict)  # check name → why not run

    def __post_init__(self) -> None:
        self.findings = ranked(self.findings)

    @property
    def top(self) -> Finding | None:
        """The most likely cause, or None when nothing fired."""
        return self.findings[0] if self.findings else None

    @property
    def warnings(self) -> list[Finding]:
        """Findings at warning level or above (what a healthy recipe must not have)."""
        return [f for f in self.findings if f.severity != "info"]

    @property
    def fixes(self) -> list[str]:
        """The overrides of every warning/error finding, most likely cause first; a key set by
        a higher-ranked finding is not set again."""
        out: dict[str, str] = {}
        for f in self.warnings:
            for item in f.fix:
                out.setdefault(item.split("=", 1)[0], item)
        return list(out.values())

    def as_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "kind": self.kind,
            "findings": [f.as_dict() for f in self.findings],
            "fixes": self.fixes,
            "checks": self.checks,
            "skipped": self.skipped,
        }


# First/last layer ratio of relative gradient norms beyond which gradients vanish or explode.
VANISH, EXPLODE = 1e-3, 1e3


def gradient_ratio(
    source: str, ratio: float, symptom: str, evidence: dict[str, Any], explode_cause: str
) -> list[Finding]:
    """The vanishing/exploding-gradient finding for a first/last ``ratio`` (one backward pass
    before training, ``source="model"``, or a run's median, ``source="run"``)."""
    if ratio < VANISH:
        return [Finding(
            f"{source}.vanishing_gradients", "vanishing_gradients", "warning",
            min(1.0, 0.8 + 0.03 * math.log10(VANISH / ratio)),
            f"gradients vanish towards the input: {symptom}", evidence,
            "saturating activations (sigmoid, tanh) or a deep stack without normalisation or "
            "residual connections shrink the gradient layer by layer: early layers do not learn",
            ["model.act=relu", "model.init=kaiming_normal"],
            note="or add normalisation (model.norm=batch) / residual connections",
        )]  # fmt: skip
    if ratio > EXPLODE:
        return [Finding(
            f"{source}.exploding_gradients", "exploding_gradients", "warning", 0.8,
            f"gradients grow towards the input: {symptom}", evidence, explode_cause,
            ["train.grad_clip=1.0", "model.init=kaiming_normal"],
        )]  # fmt: skip
    return []


def num(x: float) -> str:
    """``x`` to 3 significant digits as YAML reads a float (``5.0e-05``, not ``5e-05``, which
    YAML takes for a string).

    >>> num(5e-05), num(0.0495), num(3.0)
    ('5.0e-05', '0.0495', '3.0')
    """
    text = f"{x:.3g}"
    mant, e, exp = text.partition("e")
    if "." not in mant:
        mant += ".0"
    return mant + e + exp


def ranked(findings: list[Finding]) -> list[Finding]:
    """Severity first, then score (descending); one finding per (rule, cause)."""
    seen: dict[tuple[str, str], Finding] = {}
    for f in findings:
        key = (f.rule, f.cause)
        if key not in seen or f.score > seen[key].score:
            seen[key] = f
    order = {s: i for i, s in enumerate(SEVERITIES)}
    return sorted(seen.values(), key=lambda f: (order[f.severity], -f.score))


def valid_fixes(raw: dict[str, Any], fixes: list[str]) -> tuple[list[str], list[str]]:
    """The fixes that keep the recipe valid (each checked on top of the ones kept before it),
    and the ones dropped. Registry options are checked too (``model.act`` exists?)."""
    from trainlab.experiment import check_config

    kept: list[str] = []
    dropped: list[str] = []
    for item in fixes:
        try:
            check_config(parse_config(apply_overrides(raw, [*kept, item])))
        except (TrainlabError, ValueError, TypeError):
            dropped.append(item)
            continue
        kept.append(item)
    return kept, dropped


def apply_fixes(raw: dict[str, Any], diagnosis: Diagnosis, out: str | Path) -> Config:
    """Write the recipe ``raw`` with the diagnosis's fixes applied to ``out`` (YAML).

    >>> apply_fixes(raw, diag, "fixed.yaml")   # doctest: +SKIP
    """
    kept, _ = valid_fixes(raw, diagnosis.fixes)
    cfg = parse_config(apply_overrides(raw, kept))
    path = Path(out)
    header = "# Written by `trainlab doctor --apply`: the recipe with these overrides applied:\n"
    header += "".join(f"#   {item}\n" for item in kept) or "#   (none: nothing to fix)\n"
    path.write_text(header + yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False))
    return cfg


def _jsonable(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value
