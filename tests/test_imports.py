"""Every trainlab package imports on its own in a fresh interpreter (no import cycle that only
the order of a test session hides)."""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import pytest

import trainlab

PACKAGES = sorted(
    f"trainlab.{m.name}" for m in pkgutil.iter_modules(trainlab.__path__) if m.name != "__main__"
)


@pytest.mark.slow
@pytest.mark.parametrize("module", PACKAGES)
def test_imports_alone(module: str) -> None:
    proc = subprocess.run([sys.executable, "-c", f"import {module}"],
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-1500:]


def test_the_tracking_package_imports_first() -> None:
    """``from trainlab.tracking import JsonlLogger`` as a script's first import (it was cyclic)."""
    code = "from trainlab.tracking import JsonlLogger, TensorBoardLogger; print('ok')"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr[-1500:]
