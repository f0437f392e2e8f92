"""Recipes from YAML, dotted overrides, validation with key paths, and the resolved dump."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from trainlab.config.schema import Config
from trainlab.config.validate import format_validation_error
from trainlab.errors import ConfigError

__all__ = [
    "read_yaml", "load_recipe", "apply_overrides", "parse_config", "load_config", "dump_config",
]  # fmt: skip


def read_yaml(path: str | Path, what: str = "recipe") -> Any:
    """``yaml.safe_load`` of a file; a missing file, bad YAML (with its line) or binary content
    is one ConfigError naming the file (``what``: recipe, space …)."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"{p}: {what} file not found")
    try:
        return yaml.safe_load(p.read_text())
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"{p}:{mark.line + 1}" if mark is not None else str(p)
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise ConfigError(f"{where}: invalid YAML: {problem}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{p}: not a text file") from None


def load_recipe(path: str | Path) -> dict[str, Any]:
    """Read a YAML recipe with ``yaml.safe_load``; it must be a mapping."""
    p = Path(path)
    data = read_yaml(p)
    if not isinstance(data, dict):
        raise ConfigError(f"{p}: a recipe must be a YAML mapping (got {type(data).__name__})")
    return data


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Set ``dotted.key=value`` pairs in a copy of ``raw``; values are parsed as YAML scalars.

    >>> apply_overrides({"optim": {"lr": 0.1}}, ["optim.lr=0.05"])
    {'optim': {'lr': 0.05}}
    """
    import copy

    out = copy.deepcopy(raw)
    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep or not key or any(not part for part in key.split(".")):
            raise ConfigError(f"override '{item}': expected dotted.key=value")
        try:
            value = yaml.safe_load(text) if text.strip() else None
        except yaml.YAMLError:
            value = text  # plain string such as a path with odd characters
        _set(out, key.split("."), value, item)
    return out


def _set(node: Any, parts: list[str], value: Any, item: str) -> None:
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        if isinstance(node, list):
            if not part.isdigit() or int(part) >= len(node):
                raise ConfigError(f"override '{item}': '{part}' is not an index of the list")
            if last:
                node[int(part)] = value
            else:
                node = node[int(part)]
        elif isinstance(node, dict):
            if last:
                node[part] = value
            else:
                if not isinstance(node.get(part), (dict, list)):
                    node[part] = {}
                node = node[part]
        else:
            path = ".".join(parts[:i])
            raise ConfigError(f"override '{item}': {path} is a value, not a section")


def parse_config(raw: dict[str, Any]) -> Config:
    """Validate a raw mapping against the schema; errors name the key path."""
    try:
        return Config.model_validate(raw)
    except ValidationError as e:
        raise ConfigError(format_validation_error(e)) from None


def load_config(path: str | Path, overrides: list[str] | None = None) -> Config:
    """Recipe file + overrides → validated :class:`Config` (registry names not yet checked)."""
    return parse_config(apply_overrides(load_recipe(path), overrides or []))


def dump_config(cfg: Config) -> str:
    """The config as YAML, in the schema's key order."""
    return yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False)
