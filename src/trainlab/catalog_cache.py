"""A cache of ``trainlab models``' table, so that listing the models does not import torch.

Building the table imports every model family and builds each model on the meta device (seconds:
``import torch`` alone takes ~1.8 s on a 2-core CPU). The rows depend only on trainlab's model
sources and the overrides, so they are kept in ``$XDG_CACHE_HOME/trainlab`` (default
``~/.cache/trainlab``) under a key made of the overrides and the path, size and modification
time of every file of ``trainlab/models``; an edited model file, another trainlab or other
overrides make a new key. Runs with plug-ins (``--import``, entry points), and processes that have
imported the models already (where code may have registered its own), never use the cache.

>>> rows = cached_rows({}, lambda: [("mlp", 1, "an MLP")], cache_dir=None)  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from trainlab.errors import ConfigError

__all__ = ["cache_key", "cached_rows", "default_cache_dir", "parse_overrides"]

Row = tuple[str, "int | None", str]


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """``["num_classes=10", "in_channels=3"]`` → ``{"num_classes": 10, "in_channels": 3}``.

    >>> parse_overrides(["num_classes=10", "image_size=96"])
    {'num_classes': 10, 'image_size': 96}
    """
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key or "." in key:
            raise ConfigError(f"models: expected option=value such as num_classes=10, got {item!r}")
        out[key] = yaml.safe_load(value)
    return out


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "trainlab"


def cache_key(overrides: dict[str, Any]) -> str:
    """A digest of the overrides and of the model sources' paths, sizes and mtimes."""
    root = Path(__file__).resolve().parent / "models"
    h = hashlib.sha256(json.dumps(overrides, sort_keys=True, default=str).encode())
    for path in sorted(root.rglob("*.py")):
        st = path.stat()
        h.update(f"{path}:{st.st_size}:{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:24]


def cached_rows(
    overrides: dict[str, Any],
    build: Callable[[], list[Row]],
    cache_dir: Path | None = None,
) -> list[Row]:
    """The table's rows from the cache when they are there and current, else ``build()``
    (written to the cache for next time; a cache that cannot be written is skipped)."""
    import sys

    from trainlab import plugins

    if plugins.loaded_plugins() or "trainlab.models" in sys.modules:
        return build()  # plug-ins, or models registered in this process: build it fresh
    folder = cache_dir or default_cache_dir()
    path = folder / f"models-{cache_key(overrides)}.json"
    try:
        return [tuple(r) for r in json.loads(path.read_text())]  # type: ignore[misc]
    except (OSError, ValueError):
        pass
    rows = build()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        tmp.write_text(json.dumps(rows))
        tmp.replace(path)  # atomic: a concurrent reader never sees half a file
    except OSError:
        pass
    return rows
