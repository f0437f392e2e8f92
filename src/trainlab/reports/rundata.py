"""Reading a run directory for reports: everything optional, every defect a warning.

Reports and comparisons read run directories only (``config.yaml``, ``env.json``,
``metrics.jsonl``, ``summary.json``, ``eval_test.json``). A run that crashed half-way still
gets a report of what it wrote; only a folder that holds none of a run's files is an error.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from trainlab.errors import TrainlabError
from trainlab.tracking.jsonl import read_metrics

__all__ = ["ReportError", "RunData", "load_run", "find_runs", "flatten"]

RUN_FILES = ("config.yaml", "metrics.jsonl", "summary.json")


class ReportError(TrainlabError):
    """A path given to ``report``/``compare`` is not a run directory (or holds none)."""


@dataclass
class RunData:
    """What one run directory holds. ``summary``/``test`` are None when the file is missing."""

    path: Path
    name: str
    config: dict[str, Any] = field(default_factory=dict)
    env: dict[str, Any] = field(default_factory=dict)
    summary: dict[str, Any] | None = None
    records: list[dict[str, Any]] = field(default_factory=list)
    test: dict[str, Any] | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def finished(self) -> bool:
        """True when the run reached its end (``summary.json`` is written last)."""
        return self.summary is not None

    def series(self, key: str, x: str = "epoch") -> tuple[list[float], list[float]]:
        """``(xs, values)`` of ``key`` over ``x`` (``epoch`` or ``step``), one value per x.

        After a crash and resume, ``metrics.jsonl`` may log a step twice: the later value wins.

        >>> run = RunData(Path("r"), "r", records=[{"step": 4, "epoch": 1, "val/acc": 0.5}])
        >>> run.series("val/acc")
        ([1], [0.5])
        """
        points: dict[float, float] = {}
        for r in self.records:
            v = r.get(key)
            if isinstance(v, (int, float)) and not isinstance(v, bool) and x in r:
                points[r[x]] = float(v)
        return list(points), list(points.values())

    def keys(self) -> set[str]:
        """Every metric key logged with a numeric value."""
        return {k for r in self.records for k, v in r.items() if _is_number(v)}

    def class_names(self, k: int) -> list[str]:
        """Class names when the run recorded them (``classes`` in summary or eval), else 0..k-1."""
        for src in (self.test or {}, self.summary or {}):
            names = src.get("classes")
            if isinstance(names, list) and len(names) == k:
                return [str(n) for n in names]
        return [str(i) for i in range(k)]

    def headline(self) -> dict[str, float]:
        """The figures worth comparing: test metrics, best monitored value, final epoch metrics,
        epochs and wall time, keyed ``test/acc``, ``best val/acc``, ``final val/loss``, …"""
        out: dict[str, float] = {}
        s = self.summary or {}
        out.update({k: v for k, v in (s.get("test") or {}).items() if _is_number(v)})
        best = s.get("best") or {}
        if _is_number(best.get("value")):
            out[f"best {best.get('monitor')}"] = float(best["value"])
            if _is_number(best.get("epoch")):
                out["best epoch"] = best["epoch"]
        final = s.get("final") or (self.records[-1] if self.records else {})
        for k, v in final.items():
            if _is_number(v) and (k.startswith("val/") or k.endswith("_epoch")):
                out[f"final {k}"] = float(v)
        if _is_number(final.get("train/samples_per_s")):  # last epoch's training throughput
            out["samples/s"] = float(final["train/samples_per_s"])
        for k in ("epochs", "steps", "wall_s"):
            if _is_number(s.get(k)):
                out[k] = s[k]
        memory = s.get("memory") or {}
        for k in ("peak_rss_mib", "cuda_max_allocated_mib"):
            if _is_number(memory.get(k)):
                out[k] = float(memory[k])
        return out


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def load_run(path: str | Path) -> RunData:
    """Read a run directory; raises :class:`ReportError` if ``path`` holds no run files.

    >>> run = load_run("runs/synthetic-20250101-120000")   # doctest: +SKIP
    >>> run.finished, run.series("val/acc")                 # doctest: +SKIP
    """
    p = Path(path)
    if not p.is_dir():
        raise ReportError(f"{p}: no such run directory")
    if not any((p / f).is_file() for f in RUN_FILES):
        raise ReportError(
            f"{p}: not a run directory (none of {', '.join(RUN_FILES)}); "
            "give a folder written by `trainlab train`"
        )
    run = RunData(path=p, name=p.name)
    run.config = _read(p / "config.yaml", run.warnings, yaml_file=True) or {}
    run.env = _read(p / "env.json", run.warnings) or {}
    run.summary = _read(p / "summary.json", run.warnings)
    run.test = _read(p / "eval_test.json", run.warnings)
    run.name = str(run.config.get("name") or p.name)
    _read_records(p / "metrics.jsonl", run)
    if run.summary is None:
        run.warnings.insert(0, "The run did not finish (no summary.json): showing what it logged.")
    elif run.summary.get("stop_reason"):
        run.warnings.append(f"Stopped early: {run.summary['stop_reason']}")
    if run.summary is not None:  # the run's own end check: an exploded loss, chance accuracy
        run.warnings.extend(str(w) for w in run.summary.get("warnings") or [])
    if any(_non_finite(r) for r in run.records):
        run.warnings.append("Some logged values are NaN or infinite (the run may have diverged).")
    return run


def _read(path: Path, warnings: list[str], yaml_file: bool = False) -> Any:
    """The parsed file, or None (missing files are normal; unreadable ones are warned)."""
    if not path.is_file():
        return None
    try:
        text = path.read_text()
        data = yaml.safe_load(text) if yaml_file else json.loads(text)
    except (OSError, UnicodeDecodeError, ValueError, yaml.YAMLError) as exc:
        warnings.append(f"{path.name}: unreadable ({type(exc).__name__}), left out.")
        return None
    if not isinstance(data, dict):
        warnings.append(f"{path.name}: not a mapping, left out.")
        return None
    return data


def _read_records(path: Path, run: RunData) -> None:
    if not path.is_file():
        run.warnings.append("metrics.jsonl is missing: no curves.")
        return
    try:
        lines = [ln for ln in path.read_text().splitlines() if ln.strip()]
        records = read_metrics(path)
    except (OSError, UnicodeDecodeError) as exc:
        run.warnings.append(f"metrics.jsonl: unreadable ({type(exc).__name__}), no curves.")
        return
    run.records = [r for r in records if isinstance(r, dict)]
    bad = len(lines) - len(run.records)
    if bad:
        run.warnings.append(
            f"metrics.jsonl: {bad} unreadable line(s) skipped (a crash while writing?)."
        )


def _non_finite(record: dict[str, Any]) -> bool:
    return any(isinstance(v, float) and not math.isfinite(v) for v in record.values())


def find_runs(paths: list[str | Path]) -> list[Path]:
    """Run directories among ``paths``: a run itself, or a folder of runs (``runs/``, a sweep;
    searched three levels deep), in the order given (a folder's runs sorted by path), each
    once. Raises :class:`ReportError` for a path that is neither.

    >>> find_runs(["runs/"])                                       # doctest: +SKIP
    [PosixPath('runs/synthetic-20250101-120000'), ...]
    """
    found: list[Path] = []
    for raw in paths:
        p = Path(raw)
        if _is_run(p):
            found.append(p)
            continue
        children = _runs_under(p) if p.is_dir() else []
        if not children:
            raise ReportError(f"{p}: neither a run directory nor a folder of runs")
        found.extend(children)
    # The same run named twice (``runs/`` and ``runs/a``) is compared once.
    unique: dict[Path, Path] = {}
    for p in found:
        unique.setdefault(p.resolve(), p)
    return list(unique.values())


def _runs_under(folder: Path, depth: int = 3) -> list[Path]:
    # Runs below a folder, by name; a sweep folder inside runs/ is searched too, but never
    # the inside of a run (its checkpoints/ or tb/).
    found: list[Path] = []
    for child in sorted(c for c in folder.iterdir() if c.is_dir()):
        if _is_run(child):
            found.append(child)
        elif depth > 1:
            found.extend(_runs_under(child, depth - 1))
    return found


def _is_run(p: Path) -> bool:
    return p.is_dir() and any((p / f).is_file() for f in RUN_FILES)


def flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested mappings as one level with dotted keys (lists stay values).

    >>> flatten({"optim": {"name": "sgd", "lr": 0.1}, "seed": 0})
    {'optim.name': 'sgd', 'optim.lr': 0.1, 'seed': 0}
    """
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and v:
            out.update(flatten(v, f"{key}."))
        else:
            out[key] = v
    return out
