"""The callback registry: recipes list callbacks by name in ``callbacks:``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from trainlab.registry import Registry

__all__ = ["CALLBACKS", "register_callback"]

CALLBACKS: Registry[Callable[..., Any]] = Registry("callback")


def register_callback(name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    return CALLBACKS.register(name)
