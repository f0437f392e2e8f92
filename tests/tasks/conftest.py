"""Helpers for the task tests: tiny runs through the real ``train_run``, one thread each."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch

from trainlab.run import train_run

torch.set_num_threads(1)  # the machine has 2 cores and pytest may run beside other jobs


@pytest.fixture
def run_recipe(tmp_path: Path) -> Callable[..., tuple[dict[str, Any], Path]]:
    """``run_recipe(yaml_text, "key=value", …, name="run")`` → (summary, run_dir)."""

    def run(text: str, *overrides: str, name: str = "run") -> tuple[dict[str, Any], Path]:
        recipe = tmp_path / f"{name}.yaml"
        recipe.write_text(text)
        run_dir = tmp_path / name
        summary = train_run(recipe, list(overrides), run_dir=run_dir, progress=False)
        return dict(summary), run_dir

    return run
