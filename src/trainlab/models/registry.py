"""The model registry and its public entry points."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import nn

from trainlab.config.validate import validate_options
from trainlab.registry import Registry

__all__ = ["MODELS", "register_model", "create_model", "list_models"]

MODELS: Registry[Callable[..., nn.Module]] = Registry(
    "model", expected="def my_net(*, num_classes: int = 10) -> nn.Module, or an nn.Module class "
    "whose __init__ takes its options by name (positional or keyword)",
)


def register_model(name: str) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Register a model builder: keyword-only arguments are what a recipe may set.

    >>> @register_model("tiny_mlp")        # doctest: +SKIP
    ... def tiny_mlp(*, num_classes: int = 10) -> nn.Module: ...
    """
    return MODELS.register(name)


def create_model(
    name: str,
    *,
    init: str | None = None,
    init_std: float = 0.01,
    init_from: str | None = None,
    **kwargs: Any,
) -> nn.Module:
    """Build a registered model; options are checked against its signature first.

    ``init``/``init_std``: a weight initialisation (``trainlab.models.init``); ``init_from``:
    a run directory or weights file whose tensors are loaded by name and shape. With them, the
    ``model:`` section of a run's ``config.yaml`` can be passed back as it is (the section's
    other training-time settings, which the model has no option for, are left out).

    >>> m = create_model("lenet5", num_classes=10)
    >>> section = yaml.safe_load(open("runs/r/config.yaml"))["model"]  # doctest: +SKIP
    >>> m = create_model(**section)                                    # doctest: +SKIP
    """
    from trainlab.config.schema import ModelSection
    from trainlab.registry import keyword_options

    fn = MODELS.get(name, where="model.name")
    own = set(ModelSection.model_fields) - set(keyword_options(fn))
    kwargs = {k: v for k, v in kwargs.items() if k not in own}
    model = fn(**validate_options(fn, kwargs, where="model", entry=f"model '{name}'"))
    if init is not None and init != "default":
        from trainlab.models.init import init_weights

        init_weights(model, init, init_std)
    if init_from is not None:
        from trainlab.compress.init_from import init_from as load_from

        load_from(model, init_from)
    return model


def list_models() -> list[str]:
    """Names of every registered model, sorted."""
    return MODELS.names()
