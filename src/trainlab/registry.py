"""One small registry for every extensible kind: models, data, tasks, losses, metrics,
optimizers, schedulers, callbacks.

Entries are functions or classes. The first ``supplied`` positional parameters are filled by
trainlab itself (an optimizer builder receives the parameter groups, a scheduler builder the
optimizer and the schedule context); every parameter after them that can be passed by keyword is
an option a recipe may set, whether it is written keyword-only (``def f(*, width=8)``) or
positional (``class Net(nn.Module): def __init__(self, width=8)``). Recipes name entries by key,
never by import path.

>>> from trainlab.registry import Registry
>>> acts = Registry("activation")
>>> @acts.register("relu")
... def relu(*, inplace: bool = False): ...
>>> acts.get("relu") is relu
True
>>> @acts.register("leaky")
... class Leaky:
...     def __init__(self, slope: float = 0.01) -> None: ...
>>> list(acts.options("leaky"))
['slope']
"""

from __future__ import annotations

import difflib
import inspect
import weakref
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from trainlab.errors import ConfigError

__all__ = ["Registry", "did_you_mean", "keyword_options"]

F = TypeVar("F", bound=Callable[..., Any])
_P = inspect.Parameter
_BY_KEYWORD = (_P.POSITIONAL_OR_KEYWORD, _P.KEYWORD_ONLY)

# Registered entry -> how many leading positional parameters trainlab supplies when calling it.
_SUPPLIED: weakref.WeakKeyDictionary[Any, int] = weakref.WeakKeyDictionary()


def did_you_mean(name: str, choices: list[str]) -> str:
    """' (did you mean 'x'?)' when a close match exists, else ''."""
    close = difflib.get_close_matches(name, choices, n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


class Registry(Generic[F]):
    """Maps lowercase keys to builder callables of one kind.

    ``supplied``: positional arguments trainlab passes before the options (0 for models and data,
    1 for optimizers: the parameter groups); ``class_supplied`` the same for a class registered
    directly, when it differs (a loss class is built from its options alone, then called with
    predictions and targets). ``expected`` shows the signature an entry should have, in errors.
    """

    def __init__(
        self,
        kind: str,
        *,
        supplied: int = 0,
        class_supplied: int | None = None,
        expected: str = "",
    ) -> None:
        self.kind = kind
        self.supplied = supplied
        self.class_supplied = supplied if class_supplied is None else class_supplied
        self.expected = expected or f"def name(*, option: type = default) for a {kind}"
        self._entries: dict[str, F] = {}

    def register(self, name: str) -> Callable[[F], F]:
        """Decorator: ``@models.register("resnet18")``. Keys are unique and lowercase."""
        if name != name.lower():
            raise ValueError(f"{self.kind} key {name!r} must be lowercase")

        def deco(fn: F) -> F:
            if name in self._entries and self._entries[name] is not fn:
                raise ValueError(f"{self.kind} {name!r} is already registered")
            supplied = self.class_supplied if inspect.isclass(fn) else self.supplied
            self._check_signature(name, fn, supplied)
            try:
                _SUPPLIED[fn] = supplied
            except TypeError:  # not weak-referenceable (a builtin): keyword-only options
                pass
            self._entries[name] = fn
            return fn

        return deco

    def _check_signature(self, name: str, fn: Any, supplied: int) -> None:
        """Refuse an entry trainlab could not call, saying which signature it expects."""
        params = _parameters(fn)
        if params is None:
            return
        positional = [p for p in params if p.kind in (_P.POSITIONAL_ONLY, _P.POSITIONAL_OR_KEYWORD)]
        takes_varargs = any(p.kind is _P.VAR_POSITIONAL for p in params)
        problem = ""
        if len(positional) < supplied and not takes_varargs:
            problem = f"takes {len(positional)} positional parameter(s), trainlab passes {supplied}"
        else:
            stuck = [
                p.name
                for p in positional[supplied:]
                if p.kind is _P.POSITIONAL_ONLY and p.default is _P.empty
            ]
            if stuck:
                problem = f"positional-only parameter '{stuck[0]}' cannot be set from a recipe"
        if problem:
            raise ConfigError(
                f"{self.kind} '{name}' {_signature_text(fn)}: {problem}; expected {self.expected}"
            )

    def get(self, name: str, where: str | None = None) -> F:
        """The entry called ``name``; an unknown name is a :class:`ConfigError` that lists the
        valid names and suggests the closest one. ``where`` names the config key for the message.
        """
        try:
            return self._entries[name]
        except KeyError:
            names = self.names()
            prefix = f"{where}: " if where else ""
            hint = "register it in a file and load that with --import FILE"
            if any(c in name for c in ":/") or ("." in name and not name[0].isdigit()):
                raise ConfigError(
                    f"{prefix}unknown {self.kind} '{name}': recipes name registered keys, not "
                    f"import paths; {hint} (see `trainlab list {self.kind}`)"
                ) from None
            raise ConfigError(
                f"{prefix}unknown {self.kind} '{name}'{did_you_mean(name, names)}; "
                f"valid: {', '.join(names)} (your own {self.kind}: {hint})"
            ) from None

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def options(self, name: str) -> dict[str, inspect.Parameter]:
        """The parameters of entry ``name`` that a recipe may set."""
        return keyword_options(self.get(name))


def _parameters(fn: Any) -> list[inspect.Parameter] | None:
    """``fn``'s parameters (a class: its ``__init__``'s, without ``self``); None if unknown."""
    try:
        if inspect.isclass(fn):
            params = list(inspect.signature(fn.__init__).parameters.values())[1:]
        else:
            params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        return None
    return params


def _signature_text(fn: Any) -> str:
    params = _parameters(fn)
    return str(inspect.Signature(params)) if params is not None else ""


def keyword_options(fn: Callable[..., Any]) -> dict[str, inspect.Parameter]:
    """The options of a registered entry: its keyword-passable parameters after the ones trainlab
    supplies. An unregistered callable: its keyword-only parameters."""
    params = _parameters(fn) or []
    supplied = _SUPPLIED.get(fn) if _weakrefable(fn) else None
    if supplied is None:
        return {p.name: p for p in params if p.kind is _P.KEYWORD_ONLY}
    positional = [p for p in params if p.kind in (_P.POSITIONAL_ONLY, _P.POSITIONAL_OR_KEYWORD)]
    skip = {p.name for p in positional[:supplied]}
    return {p.name: p for p in params if p.kind in _BY_KEYWORD and p.name not in skip}


def _weakrefable(fn: Any) -> bool:
    try:
        weakref.ref(fn)
    except TypeError:
        return False
    return True
