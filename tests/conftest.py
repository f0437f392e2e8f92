"""Shared fixtures. Tests never use the network and keep to one thread per process."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

os.environ["TRAINLAB_OFFLINE"] = "1"  # a missing dataset must fail fast, never download
torch.set_num_threads(1)


@pytest.fixture
def recipe(tmp_path: Path):
    """Write a recipe YAML into tmp_path and return its path."""

    def write(text: str, name: str = "recipe.yaml") -> Path:
        path = tmp_path / name
        path.write_text(text)
        return path

    return write
