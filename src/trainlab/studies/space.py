"""Search spaces: which recipe keys a search varies, over what range, read from a YAML file.

A space file maps dotted recipe keys (the same keys as ``key=value`` overrides) to a range::

    optim.lr: {type: float, low: 1.0e-4, high: 1.0, log: true}
    model.hidden.0: {type: int, low: 8, high: 64, step: 8}
    model.act: {type: categorical, choices: [relu, gelu]}
    model.norm: [none, batch]          # a list is short for a categorical

:func:`load_space` checks the whole file before anything runs — field names, types, bounds, and
that the recipe accepts the values at the bounds and every choice (they are applied as overrides
and validated like ``trainlab train`` would; for ``model.*`` and ``optim.*`` keys the model and
optimizer are also built with them) — so a mistake is one line naming the file and key.
``trainlab tune`` (Optuna) and ``trainlab sweep --random`` both sample from the result.

>>> import random
>>> space = {"optim.lr": Dim("optim.lr", "float", low=1e-3, high=1.0, log=True)}
>>> params = sample_random(space, random.Random(0))
>>> as_overrides(params)[0].startswith("optim.lr=")
True
"""

from __future__ import annotations

import math
import random
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import yaml

from trainlab.config.load import apply_overrides, parse_config, read_yaml
from trainlab.config.schema import Config
from trainlab.errors import ConfigError

__all__ = ["Dim", "load_space", "parse_space", "sample_random", "suggest", "as_overrides",
           "grid_values", "space_as_dict"]  # fmt: skip

_FIELDS = {
    "float": {"type", "low", "high", "log", "step"},
    "int": {"type", "low", "high", "log", "step"},
    "categorical": {"type", "choices"},
}
_SCALARS = (str, int, float, bool, type(None))


@dataclass(frozen=True)
class Dim:
    """One searched key: ``float``/``int`` between ``low`` and ``high`` (both included; ``log``
    samples evenly in log scale, ``step`` on a lattice from ``low``), or ``categorical`` over
    ``choices`` (YAML scalars)."""

    key: str
    type: str
    low: float | int | None = None
    high: float | int | None = None
    log: bool = False
    step: float | int | None = None
    choices: tuple[Any, ...] | None = None

    def bounds(self) -> list[Any]:
        """The values the recipe must accept: both bounds, or every choice."""
        if self.type == "categorical":
            return list(self.choices or ())
        return [self.low, self.high]


def load_space(path: str | Path, cfg: Config) -> dict[str, Dim]:
    """Read and check a space file against the recipe ``cfg`` (see the module docstring).

    >>> load_space("space.yaml", load_config("recipes/synthetic.yaml"))  # doctest: +SKIP
    {'optim.lr': Dim(key='optim.lr', type='float', low=0.0001, high=1.0, log=True, ...)}
    """
    return parse_space(read_yaml(path, "space"), cfg, where=str(Path(path)))


def parse_space(raw: Any, cfg: Config, where: str = "space") -> dict[str, Dim]:
    """:func:`load_space` for an already-parsed mapping; ``where`` names it in errors."""
    if not isinstance(raw, dict) or not raw:
        raise ConfigError(f"{where}: a space must be a non-empty mapping of dotted.key: range")
    space = {}
    builds = None  # whether the recipe's model and optimizer build without its data
    for key, spec in raw.items():
        if not isinstance(key, str) or not key or any(not part for part in key.split(".")):
            raise ConfigError(f"{where}: {key!r}: keys are dotted recipe keys such as optim.lr")
        dim = _parse_dim(key, spec, f"{where}: {key}")
        _check_recipe_accepts(dim, cfg, f"{where}: {key}")
        if key.startswith(("model.", "optim.")):
            builds = _builds(cfg.model_dump(mode="json")) if builds is None else builds
            if builds is None:
                _check_builds(dim, cfg, f"{where}: {key}")
        space[key] = dim
    return space


def _parse_dim(key: str, spec: Any, where: str) -> Dim:
    if isinstance(spec, list):
        spec = {"type": "categorical", "choices": spec}
    if not isinstance(spec, dict):
        raise ConfigError(f"{where}: expected a mapping such as {{type: float, low: 0.001, "
                          f"high: 0.1}} or a list of choices (got {spec!r})")  # fmt: skip
    kind = spec.get("type")
    if kind not in _FIELDS:
        raise ConfigError(f"{where}.type: must be one of {', '.join(_FIELDS)} (got {kind!r})")
    unknown = sorted(set(spec) - _FIELDS[kind])
    if unknown:
        valid = ", ".join(sorted(_FIELDS[kind]))
        raise ConfigError(f"{where}.{unknown[0]}: unknown field for type {kind}; valid: {valid}")
    if kind == "categorical":
        return _categorical(key, spec.get("choices"), where)
    return _numeric(key, kind, spec, where)


def _categorical(key: str, choices: Any, where: str) -> Dim:
    if not isinstance(choices, list) or not choices:
        raise ConfigError(f"{where}.choices: a non-empty list is required (got {choices!r})")
    for c in choices:
        if not isinstance(c, _SCALARS):
            raise ConfigError(f"{where}.choices: {c!r} is not a scalar (str, number, bool, null)")
    if len({repr(c) for c in choices}) != len(choices):
        raise ConfigError(f"{where}.choices: a choice is listed twice ({choices!r})")
    return Dim(key, "categorical", choices=tuple(choices))


def _number(spec: dict[str, Any], name: str, kind: str, where: str) -> Any:
    value = spec.get(name)
    ok = int if kind == "int" else (int, float)
    if isinstance(value, bool) or not isinstance(value, ok):
        want = "an integer" if kind == "int" else "a number"
        raise ConfigError(f"{where}.{name}: must be {want} (got {value!r})")
    if not math.isfinite(value):
        raise ConfigError(f"{where}.{name}: must be finite (got {value!r})")
    return float(value) if kind == "float" else value


def _numeric(key: str, kind: str, spec: dict[str, Any], where: str) -> Dim:
    low, high = _number(spec, "low", kind, where), _number(spec, "high", kind, where)
    log = spec.get("log", False)
    if not isinstance(log, bool):
        raise ConfigError(f"{where}.log: must be true or false (got {log!r})")
    step = _number(spec, "step", kind, where) if spec.get("step") is not None else None
    if low > high:
        raise ConfigError(f"{where}: low ({low}) is greater than high ({high})")
    if log and low <= 0:
        raise ConfigError(f"{where}: log: true needs low > 0 (got low {low})")
    if step is not None and step <= 0:
        raise ConfigError(f"{where}.step: must be > 0 (got {step})")
    if log and step is not None and not (kind == "int" and step == 1):
        raise ConfigError(f"{where}: log and step cannot be combined (Optuna samples either)")
    if step is not None and not _multiple(high - low, step):
        raise ConfigError(f"{where}: high - low ({high - low}) is not a multiple of step ({step})")
    return Dim(key, kind, low=low, high=high, log=log, step=step)


def _multiple(span: float, step: float) -> bool:
    n = round(span / step)
    return math.isclose(n * step, span, rel_tol=1e-9, abs_tol=1e-12)


def _check_recipe_accepts(dim: Dim, cfg: Config, where: str) -> None:
    """Apply each bound (or choice) as an override and validate the recipe with it, the way
    ``trainlab train`` does: the schema, then every registry name and option."""
    from trainlab.experiment import check_config

    base = cfg.model_dump(mode="json", exclude_unset=True)
    for value in dim.bounds():
        item = as_overrides({dim.key: value})[0]
        try:
            check_config(parse_config(apply_overrides(base, [item])))
        except ConfigError as e:
            raise ConfigError(f"{where}: the recipe refuses {item}: {e}") from None


def _builds(raw: dict[str, Any]) -> Exception | None:
    """Build the model (sizes the data would fill in left at the model's defaults) and the
    optimizer of a recipe, leaving every RNG as it was; the error, if it fails."""
    import torch

    from trainlab.models.registry import create_model
    from trainlab.optim import build_optimizer

    cfg = parse_config(raw)
    try:
        with torch.random.fork_rng(devices=[]), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # e.g. a zero-width layer's init warning
            model = create_model(cfg.model.name, **cfg.model.options())
            build_optimizer(model, cfg.optim.name, cfg.optim.options(),
                            cfg.optim.decay_norm_and_bias, cfg.optim.lr_mult)  # fmt: skip
    except Exception as e:  # the model's or optimizer's own checks (torch's ValueError…)
        return e
    return None


def _check_builds(dim: Dim, cfg: Config, where: str) -> None:
    """Values only the model or optimizer refuse (an unknown activation, a negative rate):
    checked when the recipe's own model and optimizer build without data."""
    base = cfg.model_dump(mode="json")
    for value in dim.bounds():
        item = as_overrides({dim.key: value})[0]
        err = _builds(apply_overrides(base, [item]))
        if err is not None:
            text = str(err).strip().splitlines()[0] if str(err).strip() else ""
            kind = "" if isinstance(err, ConfigError) else f"{type(err).__name__}: "
            raise ConfigError(f"{where}: the recipe refuses {item}: {kind}{text}")


def _grid_axis(dim: Dim) -> list[Any]:
    if dim.type == "categorical":
        return list(dim.choices or ())
    if dim.step is None:
        if dim.type == "int" and dim.log is False:
            return list(range(int(dim.low), int(dim.high) + 1))  # type: ignore[arg-type]
        raise ConfigError(f"{dim.key}: the grid sampler needs a step (or choices) for every key")
    n = round((dim.high - dim.low) / dim.step)  # type: ignore[operator]
    values = [dim.low + i * dim.step for i in range(n + 1)]  # type: ignore[operator]
    return [int(v) if dim.type == "int" else round(v, 12) for v in values]


def grid_values(space: dict[str, Dim]) -> dict[str, list[Any]]:
    """Every value of every key, for Optuna's ``GridSampler`` (floats need a ``step``).

    >>> grid_values({"a": Dim("a", "int", low=1, high=3)})
    {'a': [1, 2, 3]}
    """
    return {key: _grid_axis(dim) for key, dim in space.items()}


def _random_value(dim: Dim, rng: random.Random) -> Any:
    if dim.type == "categorical":
        return rng.choice(list(dim.choices or ()))
    low, high = dim.low, dim.high
    assert low is not None and high is not None
    if dim.step is not None and not dim.log:
        k = rng.randint(0, round((high - low) / dim.step))
        value = low + k * dim.step
        return int(value) if dim.type == "int" else round(value, 12)
    if dim.type == "int":
        if dim.log:  # even in log scale over [low - 0.5, high + 0.5] (low >= 1), like Optuna
            x = math.exp(rng.uniform(math.log(low - 0.5), math.log(high + 0.5)))
            return min(max(round(x), int(low)), int(high))
        return rng.randint(int(low), int(high))
    if dim.log:
        return math.exp(rng.uniform(math.log(low), math.log(high)))
    return rng.uniform(low, high)


def sample_random(space: dict[str, Dim], rng: random.Random) -> dict[str, Any]:
    """One point drawn uniformly (log-uniformly where ``log``) from every key of ``space``.

    >>> sample_random({"m": Dim("m", "categorical", choices=("a",))}, random.Random(0))
    {'m': 'a'}
    """
    return {key: _random_value(dim, rng) for key, dim in space.items()}


def suggest(space: dict[str, Dim], trial: Any) -> dict[str, Any]:
    """The values of an Optuna ``trial`` for every key (parameter names are the dotted keys).

    >>> import optuna  # doctest: +SKIP
    >>> optuna.create_study().optimize(lambda t: suggest(space, t)["optim.lr"], 3)  # +SKIP
    """
    params: dict[str, Any] = {}
    for key, d in space.items():
        if d.type == "categorical":
            params[key] = trial.suggest_categorical(key, list(d.choices or ()))
        elif d.type == "int":
            params[key] = trial.suggest_int(key, d.low, d.high, step=d.step or 1, log=d.log)
        else:
            params[key] = trial.suggest_float(key, d.low, d.high, step=d.step, log=d.log)
    return params


def _scalar(value: Any) -> str:
    text = yaml.safe_dump(value, default_flow_style=True, width=10**6).strip()
    return text[: -len("...")].strip() if text.endswith("...") else text


def as_overrides(params: dict[str, Any]) -> list[str]:
    """``key=value`` strings whose values read back (as YAML scalars) to exactly ``params``.

    >>> as_overrides({"optim.lr": 0.001, "model.act": "true", "sched": None})
    ['optim.lr=0.001', "model.act='true'", 'sched=null']
    """
    return [f"{key}={_scalar(value)}" for key, value in params.items()]


def space_as_dict(space: dict[str, Dim]) -> dict[str, dict[str, Any]]:
    """The space as plain data (for a study's records and comparisons on resume)."""
    out = {}
    for key, dim in space.items():
        d = {k: v for k, v in asdict(dim).items() if k != "key" and v is not None}
        if "choices" in d:
            d["choices"] = list(d["choices"])
        out[key] = d
    return out
