"""The callback registry: recipes list callbacks by name in ``callbacks:``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from trainlab.registry import Registry

__all__ = ["CALLBACKS", "register_callback"]

CALLBACKS: Registry[Callable[..., Any]] = Registry(
    "callback", expected="def my_callback(*, option: type = default) or a class whose __init__ "
    "takes its options by name and has on_* methods",
)


def register_callback(name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    return CALLBACKS.register(name)
