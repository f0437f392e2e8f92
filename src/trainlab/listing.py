"""What ``trainlab list`` shows: every registry kind, its entries, and one entry's options with
their types, defaults and one-line help.

The help of an option comes from, in this order: a comment on its line in the signature
(``root: str,  # the folder of images``), a Google-style ``Args:`` line or a docstring sentence
that names it in double backticks. An option whose type is a pydantic model (the image folder's
``transforms``) is shown field by field (``transforms.resize``), with the fields' comments.

>>> rows, summary = option_rows("optimizers", "sgd")
>>> [r.name for r in rows][:2]
['lr', 'momentum']
"""

from __future__ import annotations

import ast
import inspect
import re
import textwrap
import typing
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from trainlab.errors import ConfigError
from trainlab.registry import Registry, did_you_mean, keyword_options

__all__ = [
    "KINDS",
    "OptionRow",
    "registries",
    "resolve_kind",
    "entry_rows",
    "option_rows",
    "singular",
]

# The kinds ``trainlab list`` knows, with the singular and short spellings it accepts.
KINDS = ("models", "data", "tasks", "losses", "metrics", "optimizers", "schedulers", "callbacks")
_ALIASES = {
    "model": "models", "task": "tasks", "loss": "losses", "metric": "metrics",
    "optimizer": "optimizers", "optim": "optimizers", "scheduler": "schedulers",
    "sched": "schedulers", "callback": "callbacks",
}  # fmt: skip
_SINGULAR = dict(zip(KINDS, ("model", "data", "task", "loss", "metric", "optimizer",
                              "scheduler", "callback"), strict=True))  # fmt: skip
_HELP_WIDTH = 100
# Model options trainlab fills in from the data when a recipe leaves them out.
_FROM_DATA = ("num_classes", "in_channels", "in_features")


@dataclass(frozen=True)
class OptionRow:
    """One option of a registry entry, as ``trainlab list KIND NAME`` prints it."""

    name: str
    type: str
    default: str
    help: str


def registries() -> dict[str, Registry[Any]]:
    """Every registry by kind (importing trainlab's parts fills them)."""
    import trainlab  # noqa: F401 - registers the built-in entries
    from trainlab.callbacks.base import CALLBACKS
    from trainlab.data.base import DATA
    from trainlab.metrics.registry import METRICS
    from trainlab.models.registry import MODELS
    from trainlab.optim.optimizers import OPTIMIZERS
    from trainlab.optim.schedulers import SCHEDULERS
    from trainlab.tasks.base import TASKS
    from trainlab.tasks.losses import LOSSES

    regs = (MODELS, DATA, TASKS, LOSSES, METRICS, OPTIMIZERS, SCHEDULERS, CALLBACKS)
    return dict(zip(KINDS, regs, strict=True))


def singular(kind: str) -> str:
    """``models`` → ``model``: how one entry of a kind is called."""
    return _SINGULAR.get(kind, kind)


def resolve_kind(kind: str) -> tuple[str, Registry[Any]]:
    """``(kind, registry)`` for a kind or one of its spellings (``model``, ``optim``…)."""
    key = _ALIASES.get(kind.lower(), kind.lower())
    regs = registries()
    if key not in regs:
        raise ConfigError(
            f"list: unknown kind '{kind}'{did_you_mean(key, list(KINDS))}; "
            f"valid: {', '.join(KINDS)}"
        )
    return key, regs[key]


def summary(fn: Any) -> str:
    """The first line of ``fn``'s docstring."""
    doc = inspect.getdoc(fn) or ""
    return doc.splitlines()[0].replace("``", "") if doc else ""


def entry_rows(kind: str) -> list[tuple[str, str, str]]:
    """``(name, one-line description, where it comes from)`` for every entry of ``kind``;
    the origin is empty for trainlab's own entries, else the plug-in or module."""
    from trainlab.plugins import origin_of

    _, reg = resolve_kind(kind)
    return [(n, summary(reg.get(n)), origin_of(reg.get(n))) for n in reg.names()]


def option_rows(kind: str, name: str) -> tuple[list[OptionRow], str]:
    """The options of entry ``name`` of ``kind`` and the entry's one-line summary."""
    kind, reg = resolve_kind(kind)
    fn = reg.get(name, where=f"list {kind}")
    target = fn.__init__ if inspect.isclass(fn) else fn
    hints = _hints(target)
    comments = _comments(target)
    doc = inspect.getdoc(fn) or ""
    if inspect.isclass(fn) and not doc.strip():
        doc = inspect.getdoc(fn.__init__) or ""
    rows = []
    for opt, p in keyword_options(fn).items():
        kind_ = hints.get(opt, p.annotation)
        default = "(required)" if p.default is p.empty else _short(repr(p.default))
        help_ = comments.get(opt) or _doc_help(doc, opt)
        if not help_ and kind == "models" and opt in _FROM_DATA:
            help_ = "from the data when the recipe leaves it out"
        nested = inspect.isclass(kind_) and issubclass(kind_, BaseModel)
        if nested and isinstance(p.default, BaseModel):
            default = "(the fields' defaults)"
        rows.append(OptionRow(opt, type_name(kind_), default, help_))
        if nested:
            rows.extend(_model_rows(opt, kind_))
    return rows, summary(fn)


def type_name(t: Any) -> str:
    """``int``, ``list[int]``, ``Literal['RGB', 'L']``… as a user would write it."""
    if t is inspect.Parameter.empty:
        return "any"
    if inspect.isclass(t) and not typing.get_args(t):
        return t.__name__
    return str(t).replace("typing.", "").replace("NoneType", "None")


def _hints(target: Any) -> dict[str, Any]:
    try:
        return typing.get_type_hints(target)
    except Exception:  # unresolvable annotations: shown as written
        return {}


def _short(text: str, width: int = 40) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _model_rows(prefix: str, model: type[BaseModel]) -> list[OptionRow]:
    comments = _comments(model)
    rows = []
    for field, info in model.model_fields.items():
        default = "(required)" if info.is_required() else _short(repr(info.default))
        help_ = info.description or comments.get(field, "")
        rows.append(OptionRow(f"{prefix}.{field}", type_name(info.annotation), default, help_))
    return rows


_LINE = re.compile(r"^\s*\**\s*(\w+)\s*[:=,)].*?#\s*(.+?)\s*$")


def _comments(obj: Any) -> dict[str, str]:
    """Trailing comments on the lines of ``obj``'s signature (a function) or fields (a class)."""
    try:
        source = textwrap.dedent(inspect.getsource(obj))
        node = ast.parse(source).body[0]
    except (OSError, TypeError, SyntaxError, IndexError):
        return {}
    lines = source.splitlines()
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
        span = lines[node.lineno - 1 : node.body[0].lineno - 1]
    elif isinstance(node, ast.ClassDef):
        span = [lines[s.lineno - 1] for s in node.body if isinstance(s, ast.AnnAssign)]
    else:
        return {}
    found = {}
    for line in span:
        m = _LINE.match(line)
        if m and not re.match(r"(noqa|type:|fmt:|pragma)", m.group(2)):
            found.setdefault(m.group(1), m.group(2))
    return found


def _doc_help(doc: str, opt: str) -> str:
    """A Google-style ``Args:`` line for ``opt``, else the first docstring sentence that names
    it in double backticks."""
    for line in doc.splitlines():
        m = re.match(rf"^\s*{re.escape(opt)}\s*(\([^)]*\))?\s*:\s*(\S.*)$", line)
        if m:
            return _clip(m.group(2))
    text = " ".join(doc.split())
    named = re.compile(rf"``{re.escape(opt)}(?=``|:| |=)")
    for sentence in re.split(r"(?<=\.)\s+(?=[A-Z`])", text):
        if named.search(sentence):
            return _clip(sentence.replace("``", ""))
    return ""


def _clip(text: str) -> str:
    text = text.strip()
    return text if len(text) <= _HELP_WIDTH else text[: _HELP_WIDTH - 1] + "…"
