"""Check a registry entry's options against its signature, with key paths in every error."""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable
from functools import cache
from typing import Any

from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError

from trainlab.errors import ConfigError
from trainlab.registry import did_you_mean, keyword_options

__all__ = ["validate_options", "format_validation_error"]


@cache
def _adapter(annotation: Any) -> TypeAdapter[Any]:
    # strict=False: "0.05" from an override becomes 0.05 for a float option, as YAML would.
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return TypeAdapter(annotation)  # a model brings its own config (extra="forbid")
    return TypeAdapter(annotation, config=ConfigDict(arbitrary_types_allowed=True))


def _hints(fn: Callable[..., Any]) -> dict[str, Any]:
    target = fn.__init__ if inspect.isclass(fn) else fn  # type: ignore[misc]
    try:
        return typing.get_type_hints(target)
    except Exception:  # unresolvable hints: validate names only
        return {}


def validate_options(
    fn: Callable[..., Any],
    options: dict[str, Any],
    where: str,
    entry: str,
    optional: tuple[str, ...] = (),
) -> dict[str, Any]:
    """Return ``options`` converted to the types ``fn``'s keyword-only parameters declare.

    ``where`` is the config path of the section (``model``), ``entry`` names the entry for
    messages (``model 'resnet_small'``). Unknown, missing or mistyped options raise
    :class:`ConfigError` naming ``where.key``. Required options named in ``optional`` may be
    missing (trainlab fills them in later, e.g. a model's ``num_classes`` from the data).
    """
    params = keyword_options(fn)
    hints = _hints(fn)
    out: dict[str, Any] = {}
    for key, value in options.items():
        if key not in params:
            valid = sorted(params)
            raise ConfigError(
                f"{where}.{key}: unknown option for {entry}{did_you_mean(key, valid)}; "
                f"valid: {', '.join(valid) or '(none)'}"
            )
        ann = hints.get(key, inspect.Parameter.empty)
        if ann is inspect.Parameter.empty or ann is Any:
            out[key] = value
            continue
        try:
            out[key] = _adapter(ann).validate_python(value)
        except ValidationError as e:
            raise ConfigError(format_validation_error(e, prefix=f"{where}.{key}")) from None
    missing = [
        n
        for n, p in params.items()
        if p.default is inspect.Parameter.empty and n not in out and n not in optional
    ]
    if missing:
        raise ConfigError(f"{where}.{missing[0]}: required option for {entry} is missing")
    return out


def format_validation_error(err: ValidationError, prefix: str = "") -> str:
    """One line from pydantic's first error: ``key.path: message (got value)``."""
    first = err.errors()[0]
    loc = ".".join(str(p) for p in first["loc"] if not str(p).startswith("function-"))
    path = ".".join(p for p in (prefix, loc) if p)
    msg = first["msg"]
    if first["type"] == "extra_forbidden":
        msg = "unknown key"
    got = first.get("input")
    shown = "" if first["type"] in ("extra_forbidden", "missing") else f" (got {got!r})"
    return f"{path or 'config'}: {msg}{shown}"
