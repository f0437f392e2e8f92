"""Shared fixtures for the data tests: one thread (the machine has 2 shared cores), tiny files."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import torch

torch.set_num_threads(1)


@pytest.fixture
def write(tmp_path: Path) -> Callable[[str, str], Path]:
    """``write("name.csv", text)`` → the path of a new file under ``tmp_path``."""

    def _write(name: str, text: str) -> Path:
        p = tmp_path / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text, encoding="utf-8")
        return p

    return _write


@pytest.fixture
def table_text() -> Callable[..., str]:
    """``table_text(n_per_class=10)``: a small CSV with two numeric features, one categorical
    (``colour``) and a string label ``species`` in 3 classes."""
    return _iris_like


def _iris_like(n_per_class: int = 10) -> str:
    lines = ["sepal,petal,colour,species"]
    for i in range(3 * n_per_class):
        c = i % 3
        lines.append(f"{c + 0.1 * (i % 7)},{2 * c - 0.05 * i},{'red' if i % 2 else 'blue'},k{c}")
    return "\n".join(lines) + "\n"
