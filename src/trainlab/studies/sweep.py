"""Sweeps: a grid (or random sample) of recipe overrides × seeds, each an ordinary run.

Every combination becomes a run directory inside one sweep folder, listed in ``sweep.json``.
Running the same sweep again skips finished runs and resumes interrupted ones from their last
checkpoint. At the end the runs are grouped by their parameters (seeds pooled): mean ± std and
95 % interval of the monitored metric per group, and for every swept key the difference between
two of its values at equal other settings, with a t-test (paired by seed when seeds match).

>>> result = sweep("recipes/lenet5_fashion_mnist.yaml",
...                grid={"model.conv_bn": ["true", "false"], "optim.lr": ["0.01", "0.1"]},
...                seeds=3)                                    # doctest: +SKIP
>>> result.groups[0]["monitor"]["n"], result.comparisons[0]["test"]  # doctest: +SKIP
(3, 'paired')
"""

from __future__ import annotations

import contextlib
import io
import itertools
import os
import random
import re
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from trainlab.config.load import load_config
from trainlab.errors import ConfigError, RunInterrupted, TrainlabError

__all__ = ["SweepResult", "SweepRun", "parse_grid", "plan", "sweep", "worker_threads"]


@dataclass
class SweepRun:
    """One combination: its parameters, seed, overrides and where and how it ended."""

    name: str
    params: dict[str, Any]
    seed: int
    overrides: list[str]
    run_dir: str
    status: str = "pending"  # pending | done | diverged | failed | interrupted
    reason: str = ""
    summary: dict[str, Any] = field(default_factory=dict)


@dataclass
class SweepResult:
    """``sweep.json``: the runs, the grouped figures and the comparisons."""

    out: str
    recipe: str
    monitor: str
    mode: str
    runs: list[SweepRun]
    groups: list[dict[str, Any]] = field(default_factory=list)
    comparisons: list[dict[str, Any]] = field(default_factory=list)
    trained: int = 0  # runs trained (or resumed) by this call
    # SHA-256 of the recipe with the sweep's own overrides, resolved: runs of one folder share it
    fingerprint: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def parse_grid(items: list[str]) -> dict[str, list[str]]:
    """``["model.conv_bn=true,false", "optim.lr=0.01,0.1"]`` → ``{key: [values…]}``; values stay
    override text (parsed as YAML scalars like any ``key=value``)."""
    grid: dict[str, list[str]] = {}
    for item in items:
        key, sep, values = item.partition("=")
        if not sep or not key or not values:
            raise ConfigError(f"--grid {item!r}: expected KEY=V1,V2,… (e.g. optim.lr=0.01,0.1)")
        if key in grid:
            raise ConfigError(f"--grid {key}: given twice")
        choices = [v.strip() for v in values.split(",")]
        if any(not v for v in choices):
            raise ConfigError(f"--grid {item!r}: an empty value")
        grid[key] = choices
    return grid


def worker_threads(workers: int) -> int:
    """Torch threads per worker: the cores shared out, never more threads than cores."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, (cores or 1) // max(workers, 1))


def _slug(params: dict[str, str]) -> str:
    text = ",".join(f"{k.rsplit('.', 1)[-1]}={v}" for k, v in params.items()) or "base"
    return re.sub(r"[^A-Za-z0-9._=,+-]", "_", text)[:80]


def plan(
    recipe: str | Path,
    overrides: list[str],
    out: Path,
    *,
    grid: dict[str, list[str]] | None = None,
    random_trials: int | None = None,
    space: str | Path | None = None,
    seeds: int = 1,
) -> list[SweepRun]:
    """Every run of the sweep, each config validated (registry options included) before any
    run starts: a bad key or value fails here, naming the key."""
    from trainlab.experiment import check_config

    base = load_config(recipe, overrides)
    combos: list[dict[str, str]]
    if random_trials is not None:
        combos = _random_combos(space, base, random_trials)
    else:
        keys = list(grid or {})
        combos = [dict(zip(keys, vals)) for vals in itertools.product(*(grid or {}).values())]
    runs: list[SweepRun] = []
    for i, params in enumerate(combos):
        for s in range(seeds):
            seed = base.seed + s
            extra = [f"{k}={v}" for k, v in params.items()]
            extra += [f"seed={seed}"] if seeds > 1 else []
            try:
                check_config(load_config(recipe, [*overrides, *extra]))
            except ConfigError as e:
                raise ConfigError(f"sweep combination {' '.join(extra)}: {e}") from None
            name = f"{i:03d}-{_slug(params)}-s{seed}"
            parsed = {k: yaml.safe_load(v) for k, v in params.items()}
            runs.append(SweepRun(name, parsed, seed, [*overrides, *extra], str(out / name)))
    return runs


def _random_combos(space: str | Path | None, base: Any, n: int) -> list[dict[str, str]]:
    """``n`` samples of the search space (``trainlab.studies.space``), seeded by the recipe."""
    if space is None:
        raise ConfigError("sweep --random N needs --space space.yaml")
    if n < 1:
        raise ConfigError(f"sweep --random: need at least 1 sample, got {n}")
    from trainlab.studies.space import as_overrides, load_space, sample_random

    dims = load_space(space, base)
    rng = random.Random(base.seed)
    combos = []
    for _ in range(n):
        pairs = [o.split("=", 1) for o in as_overrides(sample_random(dims, rng))]
        combos.append({k: v for k, v in pairs})
    return combos


def _fingerprint(folder: Path, base: Any) -> str:
    """The base config's hash; a folder holding a sweep of another recipe or other overrides is
    refused (its finished runs would otherwise be taken for this sweep's)."""
    import hashlib
    import json

    stamp = hashlib.sha256(base.model_dump_json().encode()).hexdigest()
    index = folder / "sweep.json"
    if index.is_file():
        try:
            old = json.loads(index.read_text()).get("fingerprint", "")
        except ValueError:
            old = ""
        if old and old != stamp:
            raise ConfigError(
                f"{folder} holds a sweep of another recipe or other overrides; nothing was "
                "changed (give another --out, or the same recipe and overrides as before)"
            )
    return stamp


def _state(run: SweepRun) -> str:
    """What is on disk for ``run``: ``done`` (summary.json), ``resume`` (a checkpoint) or
    ``new`` (nothing worth keeping)."""
    rdir = Path(run.run_dir)
    if (rdir / "summary.json").is_file():
        return "done"
    if (rdir / "checkpoints" / "latest").exists():
        return "resume"
    return "new"


def _execute(recipe: str, run: SweepRun, threads: int | None) -> SweepRun:
    """Train (or resume) one run; failures are recorded, never raised (a sweep goes on)."""
    import torch
    from rich.console import Console

    from trainlab.run import train_run

    if threads is not None:
        torch.set_num_threads(threads)
    rdir = Path(run.run_dir)
    # Each run's own tables and "run:" line would bury the sweep's one line per run.
    quiet = Console(quiet=True)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            if _state(run) == "resume":
                train_run(None, [], resume=rdir, progress=False, console=quiet)  # type: ignore[arg-type]
            else:
                _set_aside(rdir)
                train_run(recipe, run.overrides, run_dir=rdir, progress=False, console=quiet)
    except RunInterrupted as e:
        run.status, run.reason = "interrupted", str(e)
        return run
    except TrainlabError as e:  # a diverged run writes its summary; others leave a reason
        run.status, run.reason = "failed", str(e)
    except Exception as e:  # noqa: BLE001 - a crashing run is recorded, the sweep goes on
        run.status, run.reason = "failed", f"{type(e).__name__}: {e}"
    _read_summary(run)
    return run


def _set_aside(rdir: Path) -> None:
    """A run folder left without a checkpoint (killed before its first save) is moved to
    ``abandoned/`` next to it rather than deleted: its partial records stay readable."""
    if rdir.exists() and any(rdir.iterdir()):
        dest = rdir.parent / "abandoned" / f"{rdir.name}-{time.strftime('%Y%m%d-%H%M%S')}"
        dest.parent.mkdir(exist_ok=True)
        shutil.move(str(rdir), dest)


def _read_summary(run: SweepRun) -> None:
    import json

    path = Path(run.run_dir) / "summary.json"
    if not path.is_file():
        return
    summary = json.loads(path.read_text())
    run.summary = {
        "best": summary.get("best", {}),
        "final": summary.get("final", {}),
        "test": summary.get("test", {}),
        "epochs": summary.get("epochs"),
        "wall_s": summary.get("wall_s"),
    }
    reason = summary.get("stop_reason") or ""
    if "non-finite" in reason:
        run.status, run.reason = "diverged", reason
    elif run.status != "failed":
        run.status = "done"


def sweep(
    recipe: str | Path,
    overrides: list[str] | None = None,
    *,
    grid: dict[str, list[str]] | None = None,
    random_trials: int | None = None,
    space: str | Path | None = None,
    seeds: int = 1,
    workers: int = 1,
    out: str | Path | None = None,
    on_run: Callable[[SweepRun, int, int], None] | None = None,
) -> SweepResult:
    """Train every combination not yet finished in ``out`` (default ``runs/sweep-<name>``),
    then group, compare and write ``sweep.json``, ``sweep.md`` and ``compare.html``."""
    from trainlab.studies.sweep_report import summarize_sweep, write_outputs

    if seeds < 1 or workers < 1:
        raise ConfigError(f"sweep: --seeds and --workers must be ≥ 1 (got {seeds}, {workers})")
    if (grid is None) == (random_trials is None):
        raise ConfigError("sweep: give --grid KEY=V1,V2 (repeatable) or --random N --space FILE")
    overrides = list(overrides or [])
    base = load_config(recipe, overrides)
    folder = Path(out) if out is not None else Path("runs") / f"sweep-{base.name}"
    runs = plan(recipe, overrides, folder, grid=grid, random_trials=random_trials,
                space=space, seeds=seeds)  # fmt: skip
    stamp = _fingerprint(folder, base)
    folder.mkdir(parents=True, exist_ok=True)
    todo = []
    for run in runs:
        if _state(run) == "done":
            _read_summary(run)
        else:
            todo.append(run)
    result = SweepResult(str(folder), str(recipe), base.train.monitor, base.train.monitor_mode,
                         runs, trained=len(todo), fingerprint=stamp)  # fmt: skip
    try:
        _train_all(str(recipe), todo, workers, on_run, len(runs) - len(todo), len(runs))
    finally:
        summarize_sweep(result)
        write_outputs(result)
    stopped = [r for r in runs if r.status in ("interrupted", "pending")]
    if stopped:
        raise RunInterrupted(
            f"sweep interrupted with {len(stopped)} of {len(runs)} runs unfinished; "
            f"the same command resumes it ({folder})", 2
        )  # fmt: skip
    return result


def _train_all(
    recipe: str,
    todo: list[SweepRun],
    workers: int,
    on_run: Callable[[SweepRun, int, int], None] | None,
    done: int,
    total: int,
) -> None:
    """Run ``todo`` in this process (one worker) or in ``workers`` spawned processes, each
    with ``cores // workers`` torch threads."""
    report = on_run or (lambda run, i, n: None)
    if workers == 1:
        for run in todo:
            _execute(recipe, run, None)
            done += 1
            report(run, done, total)
            if run.status == "interrupted":
                return
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    threads = worker_threads(workers)
    ctx = multiprocessing.get_context("spawn")
    by_name = {r.name: r for r in todo}
    with ProcessPoolExecutor(workers, mp_context=ctx) as pool:
        futures = [pool.submit(_execute, recipe, run, threads) for run in todo]
        try:
            for fut in as_completed(futures):
                finished = fut.result()
                by_name[finished.name].__dict__.update(finished.__dict__)
                done += 1
                report(by_name[finished.name], done, total)
        except KeyboardInterrupt:
            # The workers got the same SIGINT: each checkpoints at a step boundary and returns.
            pool.shutdown(wait=True, cancel_futures=True)
            for fut in futures:
                if fut.done() and not fut.cancelled() and fut.exception() is None:
                    finished = fut.result()
                    by_name[finished.name].__dict__.update(finished.__dict__)
