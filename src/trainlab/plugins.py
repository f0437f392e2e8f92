"""Your own code in trainlab: plug-ins that register models, data, tasks, losses, metrics,
optimizers, schedulers or callbacks with the decorators trainlab's own parts use.

A plug-in enters through one of two explicit doors, never through a recipe:

- ``--import FILE_OR_MODULE`` on any command (``trainlab train recipe.yaml --import nets.py``),
  or :func:`import_plugin` from Python: a ``.py`` file, a package folder or a module name;
- an installed package's entry point in the group ``trainlab.plugins``
  (``[project.entry-points."trainlab.plugins"] mynets = "mynets.register"``): the module is
  imported, and an attribute after ``:`` is called with no arguments. The CLI loads them all.

A run records the plug-ins it used in ``plugins.json`` (file path and SHA-256); ``--resume``,
``trainlab eval`` and :func:`trainlab.load_model` import them again from there and refuse when a
file changed or vanished (``--allow-changed-plugins`` turns that into a warning).

>>> from trainlab.plugins import import_plugin     # doctest: +SKIP
>>> import_plugin("my_models.py")                   # doctest: +SKIP
Plugin(spec='my_models.py', source='file', ...)
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.metadata
import importlib.util
import json
import os
import sys
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from trainlab.errors import TrainlabError

__all__ = [
    "Plugin", "PluginError", "import_plugin", "load_entry_points", "load_plugins",
    "loaded_plugins", "record_plugins", "use_run_plugins", "origin_of", "ENTRY_POINT_GROUP",
]  # fmt: skip

ENTRY_POINT_GROUP = "trainlab.plugins"
PLUGINS_FILE = "plugins.json"
# What this process loaded, for the processes it starts (sweep, tune and cv workers, torchrun):
# they inherit the environment and load the same plug-ins when they import trainlab.
ENV_VAR = "TRAINLAB_PLUGINS"
_TRAINLAB_DIR = str(Path(__file__).resolve().parent)


class PluginError(TrainlabError):
    """A plug-in failed to import, or a run's plug-in changed or vanished."""


@dataclass
class Plugin:
    """One imported plug-in, as ``plugins.json`` records it."""

    spec: str  # what was asked for: a path, a module name, or an entry point's "name = value"
    source: str  # "file", "module" or "entry_point"
    module: str  # its name in sys.modules
    path: str  # the file (or package folder) that was hashed
    sha256: str
    dist: str | None = None  # "package version" of an entry point
    registered: list[str] = field(default_factory=list)  # "kind/name" of what it registered


_LOADED: dict[str, Plugin] = {}  # by resolved path (files) or module name
_SETTINGS = {"allow_changed": os.environ.get("TRAINLAB_ALLOW_CHANGED_PLUGINS") == "1"}


def loaded_plugins() -> list[Plugin]:
    """Every plug-in imported in this process, in import order."""
    return list(_LOADED.values())


def allow_changed_plugins(allow: bool = True) -> None:
    """Warn instead of refusing when a run's plug-in changed or vanished."""
    _SETTINGS["allow_changed"] = allow


def load_plugins(imports: list[str] | None = None, *, entry_points: bool = True) -> list[Plugin]:
    """What the CLI does first: every installed entry point, then each ``--import``. Processes
    started from here (workers of a sweep, tune or cv) load the same ones (``TRAINLAB_PLUGINS``)."""
    found = load_entry_points() if entry_points else []
    found += [import_plugin(spec) for spec in imports or []]
    specs = [p.path if p.source == "file" else p.module for p in found if p.source != "entry_point"]
    os.environ[ENV_VAR] = json.dumps({"imports": specs, "entry_points": entry_points})
    return found


def load_inherited() -> None:
    """In a process started by a trainlab command: load the plug-ins it had loaded."""
    raw = os.environ.get(ENV_VAR)
    if not raw:
        return
    try:
        wanted = json.loads(raw)
        imports, entry_points = list(wanted["imports"]), bool(wanted["entry_points"])
    except (ValueError, KeyError, TypeError):
        raise PluginError(f"{ENV_VAR}={raw!r}: not what trainlab writes there") from None
    load_plugins(imports, entry_points=entry_points)


def import_plugin(spec: str) -> Plugin:
    """Import a plug-in file (``nets.py``), package folder or module name (``mynets.models``)
    once per process; a failure is a :class:`PluginError` naming file, line and message."""
    path = Path(spec).expanduser()
    as_path = spec.endswith(".py") or os.sep in spec or path.exists()
    if as_path:
        path = path.resolve()
        if not path.exists():
            raise PluginError(f"--import {spec}: no such file")
        key = str(path)
    else:
        key = spec
    if key in _LOADED:
        return _LOADED[key]
    before = _snapshot()
    if as_path:
        module = _import_file(spec, path)
        plugin = Plugin(spec, "file", module.__name__, str(path), _hash(path))
    else:
        module = _import_module(spec, spec)
        where = _module_path(module)
        plugin = Plugin(spec, "module", spec, str(where), _hash(where))
    plugin.registered = sorted(_snapshot() - before)
    _LOADED[key] = plugin
    return plugin


def load_entry_points() -> list[Plugin]:
    """Import every installed ``trainlab.plugins`` entry point (once per process)."""
    found = []
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        key = f"entry_point:{ep.name}={ep.value}"
        if key in _LOADED:
            found.append(_LOADED[key])
            continue
        dist = f"{ep.dist.name} {ep.dist.version}" if ep.dist is not None else None
        label = f"entry point '{ep.name} = {ep.value}'" + (f" of {dist}" if dist else "")
        before = _snapshot()
        module = _import_module(ep.module, label)
        if ep.attr:
            hook = getattr(module, ep.attr, None)
            if not callable(hook):
                raise PluginError(f"{label}: '{ep.attr}' is not a function of {ep.module}")
            _run(label, Path(_module_path(module)), hook)
        where = _module_path(module)
        plugin = Plugin(f"{ep.name} = {ep.value}", "entry_point", ep.module, str(where),
                        _hash(where), dist)  # fmt: skip
        plugin.registered = sorted(_snapshot() - before)
        _LOADED[key] = plugin
        found.append(plugin)
    return found


def _import_file(spec: str, path: Path) -> ModuleType:
    """Run a plug-in file (or a package folder's ``__init__.py``) as a fresh module named after
    its path, with its folder on ``sys.path`` so that it can import its neighbours."""
    init = path / "__init__.py" if path.is_dir() else path
    if not init.is_file():
        raise PluginError(f"--import {spec}: not a .py file or a package folder")
    digest = hashlib.sha1(str(path).encode()).hexdigest()[:8]
    name = f"trainlab_plugin_{''.join(c if c.isalnum() else '_' for c in path.stem)}_{digest}"
    search = [str(path)] if path.is_dir() else None
    mspec = importlib.util.spec_from_file_location(name, init, submodule_search_locations=search)
    if mspec is None or mspec.loader is None:
        raise PluginError(f"--import {spec}: cannot be imported as Python")
    module = importlib.util.module_from_spec(mspec)
    folder = str(path.parent)
    if folder not in sys.path:
        sys.path.insert(0, folder)
    sys.modules[name] = module
    try:
        _run(f"--import {spec}", path, lambda: mspec.loader.exec_module(module))  # type: ignore[union-attr]
    except PluginError:
        del sys.modules[name]
        raise
    return module


def _import_module(name: str, label: str) -> ModuleType:
    """Import module ``name``; the current folder is searched too, as ``python -m`` does."""
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.append(os.getcwd())
    prefix = label if label != name else f"--import {name}"
    try:
        found = importlib.util.find_spec(name)  # imports the parent packages of a.b.c
    except ValueError:  # an empty or relative name
        found = None
    except Exception as e:  # a parent package that is missing or fails to import
        missing = isinstance(e, ModuleNotFoundError) and f"{name}.".startswith(f"{e.name}.")
        if not missing:
            raise PluginError(f"{prefix}: {_where(e, Path(name))}{_message(e)}") from e
        found = None
    if found is None:
        raise PluginError(f"--import {name}: no file or module named '{name}'" if label == name
                          else f"{label}: module '{name}' is not installed")  # fmt: skip
    origin = Path(found.origin) if found.origin else Path(name)
    where = origin.parent if origin.name == "__init__.py" else origin
    result: list[ModuleType] = []
    _run(prefix, where, lambda: result.append(importlib.import_module(name)))
    return result[0]


def _run(label: str, own: Path, fn: Any) -> None:
    """Call ``fn``; any exception becomes one line: label, file:line, type and message."""
    try:
        fn()
    except (Exception, SystemExit) as e:
        raise PluginError(f"{label}: {_where(e, own)}{_message(e)}") from e


def _message(e: BaseException) -> str:
    if isinstance(e, SyntaxError):
        return f"SyntaxError: {e.msg}"
    if isinstance(e, TrainlabError):
        return str(e)
    return f"{type(e).__name__}: {e}"


def _where(e: BaseException, own: Path) -> str:
    """``file:line: `` of the frame that failed: the deepest in the plug-in's own file(s), else
    the deepest outside trainlab and Python's import machinery."""
    if isinstance(e, SyntaxError) and e.filename:
        return f"{e.filename}:{e.lineno}: "
    frames = traceback.extract_tb(e.__traceback__)
    mine = [f for f in frames if f.filename == str(own) or f.filename.startswith(f"{own}{os.sep}")]
    user = [f for f in frames if not f.filename.startswith(("<", _TRAINLAB_DIR + os.sep))]
    pick = (mine or user or frames or [None])[-1]
    return f"{pick.filename}:{pick.lineno}: " if pick is not None else ""


def _module_path(module: ModuleType) -> Path:
    file = getattr(module, "__file__", None)
    if not file:
        raise PluginError(f"plug-in module {module.__name__} has no file to record")
    path = Path(file).resolve()
    return path.parent if path.name == "__init__.py" else path


def _hash(path: Path) -> str:
    """SHA-256 of a file, or of every ``.py`` file of a package folder (names included)."""
    h = hashlib.sha256()
    if path.is_dir():
        for f in sorted(path.rglob("*.py")):
            h.update(str(f.relative_to(path)).encode() + b"\0" + f.read_bytes())
    else:
        h.update(path.read_bytes())
    return h.hexdigest()


def _snapshot() -> set[str]:
    from trainlab.listing import registries

    return {f"{kind}/{n}" for kind, reg in registries().items() for n in reg.names()}


def origin_of(entry: Any) -> str:
    """Where a registry entry comes from: '' for trainlab's own, else the plug-in or module."""
    module = getattr(entry, "__module__", "") or ""
    if module == "trainlab" or module.startswith("trainlab."):
        return ""
    for plugin in _LOADED.values():
        if module == plugin.module or module.startswith(f"{plugin.module}."):
            return plugin.spec if plugin.source != "file" else plugin.path
    return module


# -- run directories ---------------------------------------------------------------------------
def record_plugins(run_dir: str | Path, config: dict[str, Any] | None = None) -> Path | None:
    """Write ``plugins.json``: the plug-ins whose registered names the run's config uses, and
    those that registered nothing trainlab can see (kept to be safe); merged with what the file
    already lists. Without ``config``, every plug-in imported in this process."""
    used = _strings(config) if config is not None else None
    out = Path(run_dir) / PLUGINS_FILE
    old = {(p["source"], p["path"]): p for p in _read(out)}
    for p in _LOADED.values():
        names = {r.split("/", 1)[1] for r in p.registered}
        if used is not None and names and not names & used:
            continue  # a plug-in (or an installed package) this run does not use
        old[(p.source, p.path)] = asdict(p)
    if not old:
        return None
    tmp = out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps({"plugins": list(old.values())}, indent=2))
    os.replace(tmp, out)
    return out


def use_run_plugins(run_dir: str | Path) -> list[Plugin]:
    """Import the plug-ins a run recorded in ``plugins.json``, refusing (or warning, with
    ``--allow-changed-plugins``) when a file vanished or its SHA-256 differs."""
    rdir = Path(run_dir)
    plugins = []
    for rec in _read(rdir / PLUGINS_FILE):
        path = Path(rec["path"])
        if rec["source"] != "file":  # a module or an entry point: found again by name
            plugins.append(_reimport_module(rdir, rec))
            continue
        if not path.exists():
            _refuse(f"{rdir} was trained with plug-in {path}, which no longer exists; put it "
                    "back, or pass --allow-changed-plugins and --import its new place")  # fmt: skip
            continue
        _check_hash(rdir, rec, path)
        plugins.append(import_plugin(str(path)))
    return plugins


def _reimport_module(rdir: Path, rec: dict[str, Any]) -> Plugin:
    if rec["source"] == "entry_point":
        load_entry_points()
        hits = [p for p in _LOADED.values() if p.source == "entry_point" and p.spec == rec["spec"]]
        if not hits:
            _refuse(f"{rdir} was trained with plug-in entry point '{rec['spec']}' of "
                    f"{rec.get('dist')}, which is no longer installed")  # fmt: skip
            return Plugin(**rec)
        plugin = hits[0]
    else:
        try:
            plugin = import_plugin(rec["module"])
        except PluginError as e:
            if not Path(rec["path"]).exists():  # not importable from here: by its recorded path
                _refuse(f"{rdir} was trained with plug-in module {rec['module']}: {e}")
                return Plugin(**rec)
            plugin = import_plugin(rec["path"])
    if plugin.sha256 != rec["sha256"]:
        _refuse(_changed(rdir, plugin.path, rec["sha256"], plugin.sha256))
    return plugin


def _check_hash(rdir: Path, rec: dict[str, Any], path: Path) -> None:
    now = _hash(path)
    if now != rec["sha256"]:
        _refuse(_changed(rdir, str(path), rec["sha256"], now))


def _changed(rdir: Path, path: str, then: str, now: str) -> str:
    return (f"{rdir} was trained with plug-in {path}, which has changed since (sha256 "
            f"{then[:12]}… then, {now[:12]}… now); restore it, or pass --allow-changed-plugins "
            "to use it as it is")  # fmt: skip


def _refuse(message: str) -> None:
    if not _SETTINGS["allow_changed"]:
        raise PluginError(message)
    print(f"trainlab: warning: {message}", file=sys.stderr)


def _read(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    try:
        return list(json.loads(path.read_text())["plugins"])
    except (ValueError, KeyError, TypeError) as e:
        raise PluginError(f"{path}: unreadable ({e})") from None


def _strings(obj: Any) -> set[str]:
    """Every string value anywhere in a config (registry names among them)."""
    if isinstance(obj, str):
        return {obj}
    if isinstance(obj, dict):
        return set().union(*(_strings(v) for v in obj.values())) if obj else set()
    if isinstance(obj, (list, tuple)):
        return set().union(*(_strings(v) for v in obj)) if obj else set()
    return set()
