"""What ``trainlab models`` shows: parameter counts and the options of each model.

Counts are at each model's defaults unless overrides such as ``num_classes=10 in_channels=3``
are given: then every model that takes an option is built with it, so that models with
different defaults (1 or 3 channels, 10 or 1000 classes) are compared on the same footing.
"""

from __future__ import annotations

import inspect
import typing
from typing import Any

import torch

from trainlab.catalog_cache import parse_overrides
from trainlab.models.registry import MODELS, list_models
from trainlab.registry import keyword_options

__all__ = ["model_table", "model_options", "parse_overrides", "count_parameters"]


def _summary(fn: Any) -> str:
    doc = inspect.getdoc(fn) or ""
    return doc.splitlines()[0] if doc else ""


def count_parameters(name: str, overrides: dict[str, Any] | None = None) -> int | None:
    """Parameters of model ``name`` with its defaults and those of ``overrides`` it takes,
    built on the meta device (no memory); ``None`` when it cannot be built so."""
    fn = MODELS.get(name)
    accepted = keyword_options(fn)
    kwargs = {k: v for k, v in (overrides or {}).items() if k in accepted}
    try:
        with torch.device("meta"):
            model = fn(**kwargs)
    except Exception:  # a model whose defaults need real tensors: shown as unknown
        return None
    return sum(p.numel() for p in model.parameters())


def model_table(overrides: dict[str, Any] | None = None) -> list[tuple[str, int | None, str]]:
    """``(name, parameters, one-line description)`` for every registered model.

    >>> rows = model_table({"num_classes": 10, "in_channels": 3})  # doctest: +SKIP
    """
    return [(n, count_parameters(n, overrides), _summary(MODELS.get(n))) for n in list_models()]


def _section_rows() -> list[tuple[str, str, str]]:
    # The model section's own keys (init, init_std, init_from, qat …), valid for every model.
    from trainlab.config.schema import ModelSection
    from trainlab.models.init import INITS

    rows = []
    for key, field in ModelSection.model_fields.items():
        if key == "name":
            continue
        kind = str(field.annotation).replace("typing.", "").replace("<class '", "")
        kind = kind.replace("'>", "")
        if key == "init":
            kind = " | ".join(INITS)
        rows.append((key, kind, repr(field.default)))
    return rows


def model_options(name: str) -> tuple[list[tuple[str, str, str]], str]:
    """The recipe options of model ``name``: ``(option, type, default)`` rows, and its summary.

    The rows end with the model section's own keys, which every model takes (``init``,
    ``init_std``, ``init_from``, ``qat``).
    """
    fn = MODELS.get(name, where="model")
    try:
        hints = typing.get_type_hints(fn)
    except Exception:
        hints = {}
    rows = []
    for opt, p in keyword_options(fn).items():
        kind = hints.get(opt, p.annotation)
        shown = getattr(kind, "__name__", None) or str(kind).replace("typing.", "")
        if typing.get_args(kind):  # list[int], int | None: as written, not just "list"
            shown = str(kind).replace("typing.", "")
        default = "(required)" if p.default is p.empty else repr(p.default)
        rows.append((opt, shown, default))
    return rows + _section_rows(), _summary(fn)
