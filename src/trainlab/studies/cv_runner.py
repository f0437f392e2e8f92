"""Running cross-validation folds: one ordinary, quiet run per fold, in this process or in a
pool of worker processes that each run many folds (start-up paid once per worker, not per fold).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["FoldJob", "FoldRecorder", "run_fold", "run_folds", "fold_done", "cpu_cores"]


@dataclass(frozen=True)
class FoldJob:
    """One fold to train: its resolved config (a plain mapping) and its run directory."""

    name: str  # fold_<repeat>_<index>
    repeat: int
    index: int
    config: dict[str, Any]
    run_dir: str


class FoldRecorder:
    """Keeps the last validation confusion matrix of a fold (the out-of-fold predictions of the
    final model, counted) at the end of its fit."""

    def __init__(self) -> None:
        self.confusion: list[list[int]] | None = None

    def on_fit_end(self, state: Any) -> None:
        conf = state.metrics.get("val/confusion")
        if isinstance(conf, list):
            self.confusion = [[int(v) for v in row] for row in conf]


def cpu_cores() -> int:
    """The cores this process may run on (its affinity mask, not the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def fold_done(run_dir: Path) -> dict[str, Any] | None:
    """The fold's record when it finished (``fold.json`` is written last), else ``None``."""
    path = run_dir / "fold.json"
    return json.loads(path.read_text()) if path.is_file() else None


def run_fold(job: FoldJob) -> dict[str, Any]:
    """Train one fold quietly (no progress bar, no table, no ``run:`` line) and write its
    ``fold.json``. An unfinished fold directory is resumed from its latest checkpoint, or
    started again when it has none. A diverged fold is recorded with status ``diverged``."""
    from rich.console import Console

    from trainlab.config.load import parse_config
    from trainlab.errors import CheckpointError, TrainingDiverged
    from trainlab.run import train_run
    from trainlab.tracking.rundir import write_json
    from trainlab.train.checkpoint import resolve_checkpoint

    rdir = Path(job.run_dir)
    recorder, resume = FoldRecorder(), None
    if rdir.exists() and any(rdir.iterdir()):
        try:
            resolve_checkpoint(rdir, "latest")
            resume = rdir
        except CheckpointError:  # killed before its first checkpoint: nothing worth keeping
            shutil.rmtree(rdir)
    t0, status, reason = time.perf_counter(), "ok", None
    quiet = Console(quiet=True)
    with contextlib.redirect_stdout(io.StringIO()):
        try:
            train_run(parse_config(job.config), run_dir=None if resume else rdir, resume=resume,
                      progress=False, console=quiet, extra_callbacks=[recorder])  # fmt: skip
        except TrainingDiverged as e:
            status, reason = "diverged", str(e)
    summary = json.loads((rdir / "summary.json").read_text())
    record = {
        "fold": job.name, "repeat": job.repeat, "index": job.index, "status": status,
        "reason": reason, "wall_s": round(time.perf_counter() - t0, 3),
        "sizes": json.loads((rdir / "data.json").read_text()).get("sizes", {}),
        "final": {k: v for k, v in summary["final"].items() if k.startswith("val/")},
        "history": summary.get("history", []), "confusion": recorder.confusion,
    }  # fmt: skip
    write_json(rdir / "fold.json", record)  # last: marks the fold finished
    return record


def _init_worker(threads: int, plugins: list[str]) -> None:
    import torch

    torch.set_num_threads(threads)
    if plugins:  # the user's models, data… registered as in the parent process
        from trainlab.plugins import load_plugins

        load_plugins(plugins)


def _parent_plugins() -> list[str]:
    """The ``--import`` plug-ins of this process (entry points load in every process anyway)."""
    from trainlab.plugins import loaded_plugins

    return [p.path if p.source == "file" else p.spec for p in loaded_plugins()
            if p.source != "entry_point"]  # fmt: skip


def run_folds(
    jobs: list[FoldJob], *, workers: int, threads: int, on_done: Callable[[dict[str, Any]], None]
) -> list[dict[str, Any]]:
    """Run ``jobs``: here, one after another (``workers`` 1), or ``workers`` at a time in
    worker processes with ``threads`` torch threads each; ``on_done`` sees each record."""
    records = []
    for record in _results(jobs, workers, threads):
        on_done(record)
        records.append(record)
    return records


def _results(jobs: list[FoldJob], workers: int, threads: int) -> Iterator[dict[str, Any]]:
    if workers <= 1 or len(jobs) <= 1:
        for job in jobs:
            yield run_fold(job)
        return
    import multiprocessing as mp

    # spawn: a fresh interpreter per worker (fork would copy this process's torch thread pools).
    pool = ProcessPoolExecutor(
        max_workers=min(workers, len(jobs)), mp_context=mp.get_context("spawn"),
        initializer=_init_worker, initargs=(threads, _parent_plugins()),
    )  # fmt: skip
    try:
        futures = [pool.submit(run_fold, job) for job in jobs]
        for fut in as_completed(futures):
            yield fut.result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
