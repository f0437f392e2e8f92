"""What ``trainlab models`` shows: parameter counts and the options of each model."""

from __future__ import annotations

import inspect
from typing import Any

import torch

from trainlab.models.registry import MODELS, list_models

__all__ = ["model_table", "model_options"]


def _summary(fn: Any) -> str:
    doc = inspect.getdoc(fn) or ""
    return doc.splitlines()[0] if doc else ""


def count_parameters(name: str) -> int | None:
    """Parameters of model ``name`` with its defaults, built on the meta device (no memory)."""
    try:
        with torch.device("meta"):
            model = MODELS.get(name)()
    except Exception:  # a model whose defaults need real tensors: shown as unknown
        return None
    return sum(p.numel() for p in model.parameters())


def model_table() -> list[tuple[str, int | None, str]]:
    """``(name, parameters, one-line description)`` for every registered model."""
    return [(n, count_parameters(n), _summary(MODELS.get(n))) for n in list_models()]


def model_options(name: str) -> tuple[list[tuple[str, str, str]], str]:
    """The recipe options of model ``name``: ``(option, type, default)`` rows, and its summary
    (the rows of ``trainlab list models NAME``, without the help column)."""
    from trainlab.listing import option_rows

    MODELS.get(name, where="model")  # the registry's own "did you mean" error
    rows, summary = option_rows("models", name)
    return [(r.name, r.type, r.default) for r in rows], summary
