"""Doctor tests: the case suite's plug-in (broken data and model) is loaded once."""

from __future__ import annotations

import pytest
import torch
from doctor_support import CASES

torch.set_num_threads(1)  # the machine's cores are shared: never oversubscribe


@pytest.fixture(scope="session", autouse=True)
def faults() -> None:
    """Register ``faulty_digits`` and ``custom_act_mlp`` (tests/doctor/cases/faults.py)."""
    from trainlab.plugins import load_plugins

    load_plugins([str(CASES / "faults.py")], entry_points=False)
