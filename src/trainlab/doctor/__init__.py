"""The doctor: diagnose a recipe before training, or a run from its records.

``doctor(target)`` dispatches on what ``target`` is: a run directory (``metrics.jsonl`` …) gets
:func:`~trainlab.doctor.records.diagnose_run`, a recipe (path or :class:`Config`) gets the
pre-flight check :func:`~trainlab.doctor.preflight.preflight`. Both return a
:class:`Diagnosis`: findings ranked by severity, each with symptom, evidence, likely cause and
the fix as recipe overrides.

>>> import trainlab
>>> diag = trainlab.doctor("runs/synthetic-20250101-120000")   # doctest: +SKIP
>>> diag.top.cause, diag.fixes                                   # doctest: +SKIP
('lr_too_high', ['optim.lr=0.01', 'train.grad_clip=1.0'])
"""

from __future__ import annotations

import sys
import types
from pathlib import Path
from typing import Any

from trainlab.doctor import callback as _callback  # noqa: F401 - registers the `doctor` callback
from trainlab.doctor.findings import Diagnosis, Finding, apply_fixes

__all__ = ["Diagnosis", "Finding", "apply_fixes", "doctor", "is_run_dir"]


def is_run_dir(target: Any) -> bool:
    """A folder (not a recipe file): diagnosed from its records."""
    return isinstance(target, (str, Path)) and Path(target).is_dir()


def doctor(target: Any, overrides: list[str] | None = None, **options: Any) -> Diagnosis:
    """Diagnose a run directory (from its files) or a recipe (pre-flight).

    ``overrides`` (``["optim.lr=0.5"]``) apply to a recipe; ``options`` go to
    :func:`~trainlab.doctor.preflight.preflight` (``skip=("lr",)``, ``lr_steps=60``).

    >>> diag = doctor("recipes/synthetic.yaml", skip=("lr",))   # doctest: +SKIP
    >>> diag.warnings                                            # doctest: +SKIP
    []
    """
    if is_run_dir(target):
        from trainlab.doctor.records import diagnose_run

        if overrides:
            from trainlab.errors import ConfigError

            raise ConfigError("doctor RUN_DIR takes no overrides (the run is read, not changed)")
        return diagnose_run(target)
    from trainlab.doctor.preflight import preflight

    return preflight(target, overrides, **options)


class _CallableModule(types.ModuleType):
    """``trainlab.doctor`` is both this package and the :func:`doctor` function: whichever
    of the two a program meets first (``import trainlab.doctor.findings`` or
    ``trainlab.doctor(...)``), calling it diagnoses."""

    def __call__(self, target: Any, overrides: list[str] | None = None, **options: Any) -> Any:
        return doctor(target, overrides, **options)


sys.modules[__name__].__class__ = _CallableModule
