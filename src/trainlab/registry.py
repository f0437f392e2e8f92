"""One small registry for every extensible kind: models, data, tasks, optimizers, schedulers,
callbacks.

Entries are plain callables. Their *keyword-only* parameters are the options a recipe may set;
positional parameters are supplied by trainlab itself (an optimizer builder receives the
parameters, a scheduler builder the optimizer). Recipes name entries by key, never by import path.

>>> from trainlab.registry import Registry
>>> acts = Registry("activation")
>>> @acts.register("relu")
... def relu(*, inplace: bool = False): ...
>>> acts.get("relu") is relu
True
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from trainlab.errors import ConfigError

__all__ = ["Registry", "did_you_mean"]

F = TypeVar("F", bound=Callable[..., Any])


def did_you_mean(name: str, choices: list[str]) -> str:
    """' (did you mean 'x'?)' when a close match exists, else ''."""
    close = difflib.get_close_matches(name, choices, n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


class Registry(Generic[F]):
    """Maps lowercase keys to builder callables of one kind."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, F] = {}

    def register(self, name: str) -> Callable[[F], F]:
        """Decorator: ``@models.register("resnet18")``. Keys are unique and lowercase."""
        if name != name.lower():
            raise ValueError(f"{self.kind} key {name!r} must be lowercase")

        def deco(fn: F) -> F:
            if name in self._entries and self._entries[name] is not fn:
                raise ValueError(f"{self.kind} {name!r} is already registered")
            self._entries[name] = fn
            return fn

        return deco

    def get(self, name: str, where: str | None = None) -> F:
        """The entry called ``name``; an unknown name is a :class:`ConfigError` that lists the
        valid names and suggests the closest one. ``where`` names the config key for the message.
        """
        try:
            return self._entries[name]
        except KeyError:
            names = self.names()
            prefix = f"{where}: " if where else ""
            raise ConfigError(
                f"{prefix}unknown {self.kind} '{name}'{did_you_mean(name, names)}; "
                f"valid: {', '.join(names)}"
            ) from None

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def options(self, name: str) -> dict[str, inspect.Parameter]:
        """The keyword-only parameters of entry ``name``: what a recipe may set."""
        return keyword_options(self.get(name))


def keyword_options(fn: Callable[..., Any]) -> dict[str, inspect.Parameter]:
    target = fn.__init__ if inspect.isclass(fn) else fn  # type: ignore[misc]
    sig = inspect.signature(target)
    return {n: p for n, p in sig.parameters.items() if p.kind is inspect.Parameter.KEYWORD_ONLY}
