"""Extra metrics by name for the built-in tasks: ``task.metrics: [cohen_kappa, R2Score]``.

A name is either a registered metric (built in below, or your own through
:func:`register_metric`) or the class name of any torchmetrics metric
(``MulticlassCohenKappa``, ``MeanAbsolutePercentageError``…). ``num_classes`` is filled in from
the data when the metric takes it. Each becomes ``val/<name>`` and ``test/<name>``.

>>> from torchmetrics import Metric                      # doctest: +SKIP
>>> @register_metric("my_error_rate")                     # doctest: +SKIP
... class ErrorRate(Metric): ...
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable
from typing import Any

from trainlab.config.validate import validate_options
from trainlab.errors import ConfigError
from trainlab.registry import Registry, did_you_mean, keyword_options

__all__ = ["METRICS", "register_metric", "build_metric"]

METRICS: Registry[Callable[..., Any]] = Registry(
    "metric",
    expected="a torchmetrics.Metric class whose __init__ takes its options by name, or "
    "def my_metric(*, num_classes: int | None = None) -> torchmetrics.Metric",
)
# Where a torchmetrics class name is looked up, in this order.
_TORCHMETRICS_MODULES = ("torchmetrics", "torchmetrics.classification", "torchmetrics.regression")


def register_metric(name: str) -> Callable[[Any], Any]:
    """Register a torchmetrics ``Metric`` class or a builder returning one (``task.metrics``)."""
    return METRICS.register(name)


@register_metric("cohen_kappa")
def cohen_kappa(*, num_classes: int) -> Any:
    """Cohen's kappa: agreement with the labels beyond chance (multi-class)."""
    from torchmetrics.classification import MulticlassCohenKappa

    return MulticlassCohenKappa(num_classes=num_classes)


@register_metric("mcc")
def mcc(*, num_classes: int) -> Any:
    """Matthews correlation coefficient (multi-class)."""
    from torchmetrics.classification import MulticlassMatthewsCorrCoef

    return MulticlassMatthewsCorrCoef(num_classes=num_classes)


@register_metric("balanced_acc")
def balanced_acc(*, num_classes: int) -> Any:
    """Accuracy averaged over classes (macro): robust to class imbalance."""
    from torchmetrics.classification import MulticlassAccuracy

    return MulticlassAccuracy(num_classes=num_classes, average="macro")


@register_metric("mape")
def mape() -> Any:
    """Mean absolute percentage error (regression)."""
    from torchmetrics.regression import MeanAbsolutePercentageError

    return MeanAbsolutePercentageError()


@register_metric("explained_variance")
def explained_variance() -> Any:
    """Explained variance (regression)."""
    from torchmetrics.regression import ExplainedVariance

    return ExplainedVariance()


def _torchmetrics_class(name: str) -> Any:
    if not name[:1].isupper():
        return None
    for mod in _TORCHMETRICS_MODULES:
        cls = getattr(importlib.import_module(mod), name, None)
        if inspect.isclass(cls):
            return cls
    return None


def build_metric(name: str, num_classes: int | None, where: str = "task.metrics") -> Any:
    """The metric ``name`` (registered, or a torchmetrics class name), with ``num_classes``
    passed when it takes it."""
    from torchmetrics import Metric

    entry = METRICS.get(name) if name in METRICS else _torchmetrics_class(name)
    if entry is None:
        names = METRICS.names()
        raise ConfigError(
            f"{where}: unknown metric '{name}'{did_you_mean(name, names)}; valid: "
            f"{', '.join(names)}, or a torchmetrics class name such as MulticlassCohenKappa"
        )
    if name in METRICS:
        params = keyword_options(entry)
    else:  # a torchmetrics class: its own __init__ parameters, by keyword
        params = dict(inspect.signature(entry.__init__).parameters)
    opts: dict[str, Any] = {}
    if "num_classes" in params and num_classes:
        opts["num_classes"] = num_classes
    if name in METRICS:
        opts = validate_options(entry, opts, where=where, entry=f"metric '{name}'")
    try:
        metric = entry(**opts)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"{where}: metric '{name}' could not be built: {e}") from None
    if not isinstance(metric, Metric):
        raise ConfigError(f"{where}: '{name}' built a {type(metric).__name__}, not a Metric")
    return metric
