"""Whole runs: ``train_run`` (what ``trainlab train`` does) and ``evaluate_run`` (``eval``)."""

from __future__ import annotations

import errno
import math
import os
import signal
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import torch
import yaml
from rich.console import Console
from rich.markup import escape

from trainlab.callbacks.checkpoint import ModelCheckpoint, callback_keys
from trainlab.callbacks.progress import ProgressBar
from trainlab.callbacks.signals import SignalStop
from trainlab.callbacks.weight_monitor import WeightMonitor
from trainlab.config.load import load_config
from trainlab.config.schema import Config
from trainlab.errors import CheckpointError, RunInterrupted, StorageError, TrainingDiverged
from trainlab.experiment import (
    build_callbacks,
    build_experiment,
    resolved_config,
)
from trainlab.optim.schedulers import scale_lr
from trainlab.plugins import record_plugins, use_run_plugins
from trainlab.preflight import building, preflight
from trainlab.tracking.jsonl import JsonlLogger, truncate_after
from trainlab.tracking.lock import run_lock
from trainlab.tracking.mlflow_logger import MLflowLogger, check_trackers  # mlflow: lazily
from trainlab.tracking.run_health import peak_memory, task_loss_warnings
from trainlab.tracking.rundir import create_run_dir, env_info, write_json
from trainlab.tracking.tensorboard import TensorBoardLogger
from trainlab.tracking.warnings_log import WarningsLog, capture_warnings  # reports: warnings
from trainlab.train.checkpoint import load_checkpoint, resolve_checkpoint, set_rng_state
from trainlab.train.distributed import agree_any, barrier, broadcast_path, is_main
from trainlab.train.state import TrainState

__all__ = ["train_run", "evaluate_run", "RunResult"]


class RunResult(dict):  # type: ignore[type-arg]
    """``summary.json`` as a dict, with ``run_dir`` set."""


def _restore(exp: Any, ckpt: Path, callbacks: list[Any]) -> TrainState:
    """A TrainState positioned exactly where checkpoint ``ckpt`` was taken."""
    ema = exp.trainer.make_ema(exp.model) if exp.trainer.ema_decay is not None else None
    payload = load_checkpoint(ckpt, exp.model, ema=ema)
    exp.optimizer.load_state_dict(payload["optimizer"])
    if exp.schedule is not None and payload["scheduler"] is not None:
        exp.schedule.scheduler.load_state_dict(payload["scheduler"])
    state = TrainState(model=exp.model, optimizer=exp.optimizer, schedule=exp.schedule, ema=ema)
    pos = payload["position"]
    state.epoch, state.batch, state.step = pos["epoch"], pos["batch"], pos["step"]
    state.skipped = pos.get("skipped", 0)
    if payload.get("scaler") is not None and exp.trainer.precision == "fp16":
        state.scaler = torch.amp.GradScaler("cuda")
        state.scaler.load_state_dict(payload["scaler"])
    state.metrics.update(payload["metrics"])
    state.history = list(payload["history"])
    saved = payload["callbacks"]
    for key, cb in callback_keys(callbacks):
        if key in saved and callable(getattr(cb, "load_state_dict", None)):
            cb.load_state_dict(saved[key])
    if payload.get("task") is not None and callable(getattr(exp.task, "load_state_dict", None)):
        exp.task.load_state_dict(payload["task"])
    set_rng_state(payload["rng"])
    return state


def train_run(
    cfg: Config | str | Path,
    overrides: list[str] | None = None,
    *,
    run_dir: str | Path | None = None,
    resume: str | Path | None = None,
    runs_root: str | Path = "runs",
    console: Console | None = None,
    progress: bool | str = True,
    extra_callbacks: list[Any] | None = None,
) -> RunResult:
    """Train from a config (or recipe path + overrides) into a run directory.

    ``progress``: ``True`` a progress bar and a line per epoch, ``"lines"`` only the lines,
    ``False`` neither.

    With ``resume`` (a run directory), the run's saved ``config.yaml`` is used and training
    continues from its latest checkpoint, in the same directory. The Python warnings the run
    raises are shown as usual and kept in ``warnings.json`` for the report.

    >>> summary = train_run("recipes/fashion_mnist.yaml", ["train.epochs=1"])  # doctest: +SKIP
    >>> summary["test"]["test/acc"]                                           # doctest: +SKIP
    """
    try:
        with capture_warnings() as caught, ExitStack() as held:
            return _train_run(
                cfg, overrides, run_dir=run_dir, resume=resume, runs_root=runs_root,
                console=console, progress=progress, extra_callbacks=extra_callbacks,
                caught=caught, held=held,
            )  # fmt: skip
    except OSError as e:
        if e.errno not in _WRITE_ERRNOS:
            raise
        raise StorageError(
            f"cannot write {e.filename or 'the run directory'}: {e.strerror}; the saved "
            "checkpoints are intact (free space, then trainlab train --resume RUN_DIR)"
        ) from None


# A full disk, a failing device, a read-only or forbidden folder: the run stops in one line.
_WRITE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EROFS, errno.EACCES, errno.EPERM,
                 errno.EFBIG}  # fmt: skip


def _train_run(
    cfg: Config | str | Path,
    overrides: list[str] | None,
    *,
    run_dir: str | Path | None,
    resume: str | Path | None,
    runs_root: str | Path,
    console: Console | None,
    progress: bool | str,
    extra_callbacks: list[Any] | None,
    caught: WarningsLog,
    held: ExitStack,
) -> RunResult:
    console = console or Console(stderr=True)
    if resume is not None:
        rdir = Path(resume)
        _lock_existing(held, rdir)  # one writer per run directory
        ckpt = resolve_checkpoint(rdir, "latest")  # fails before anything is touched
        use_run_plugins(rdir)  # the plug-ins the run recorded, checked against their hashes
        cfg = load_config(rdir / "config.yaml", overrides)
    else:
        cfg = cfg if isinstance(cfg, Config) else load_config(cfg, overrides)
        ckpt = None
    with building(cfg):
        user_cbs = build_callbacks(cfg) + list(extra_callbacks or [])
    check_trackers(cfg.train)  # reports: a missing mlflow fails before a run dir exists
    # check_config runs first inside: every mistake surfaces before a run directory exists.
    with building(cfg):  # a builder failing on the recipe's values: one line naming the section
        exp = build_experiment(cfg)
    preflight(exp, user_cbs)  # one batch through model, loss and metrics; monitors exist
    dist = exp.trainer.dist
    main = dist.rank == 0  # under torchrun only rank 0 writes; every rank computes
    _data_notes(exp, main, console)
    if resume is not None:
        rdir = Path(resume)
    else:
        rdir = create_run_dir(cfg.name, run_dir, runs_root) if main else Path()
        if main:
            held.enter_context(run_lock(rdir))
        rdir = broadcast_path(rdir, dist)
    stopper = SignalStop()
    callbacks, checkpointer = _run_callbacks(
        cfg, rdir, main, [stopper, caught, *user_cbs], progress, console
    )  # caught: writes the run's Python warnings to warnings.json from on_fit_start
    exp.trainer.callbacks = callbacks
    exp.trainer.run_dir = rdir
    if ckpt is None and main:
        (rdir / "config.yaml").write_text(
            yaml.safe_dump(resolved_config(cfg, exp), sort_keys=False)
        )
        write_json(
            rdir / "env.json",
            env_info(exp.trainer.device, exp.trainer.precision, exp.trainer.channels_last),
        )
        # Split sizes, normalisation statistics (from the training split), skipped rows/files.
        write_json(rdir / "data.json", exp.data.describe())
        if exp.init_report is not None:  # model.init_from: which tensors came from where
            from trainlab.compress.init_from import summary_line

            write_json(rdir / "init_from.json", exp.init_report)
            console.print(summary_line(exp.init_report))
    if main:  # plugins.json: the --import files and used entry points, with their SHA-256
        record_plugins(rdir, cfg.model_dump(mode="json"))
    state = _restore(exp, ckpt, callbacks) if ckpt is not None else None
    if state is not None and main:
        truncate_after(rdir / "metrics.jsonl", state.step)
    t0 = time.perf_counter()
    with stopper.installed():
        state = _fit(exp, rdir, callbacks, state, stopper, console)
    barrier(dist)  # rank 0's last checkpoint is on disk before any rank reads it
    # Under torchrun a signal may reach one rank only; all ranks end the same way.
    if agree_any(stopper.signum is not None, dist):
        if main:
            print(f"run: {rdir}", flush=True)
        raise RunInterrupted(
            f"{state.stop_reason} after step {state.step}; checkpoint saved; continue with: "
            f"trainlab train --resume {rdir}",
            stopper.signum or signal.SIGTERM,
        )
    summary = _finish(exp, state, checkpointer, rdir, time.perf_counter() - t0, console)
    if main:
        _write_outputs(exp, rdir, callbacks, summary, state.diverged, console)
        print(f"run: {rdir}", flush=True)  # last line, on stdout: scripts can parse it
    if state.diverged:
        raise TrainingDiverged(f"{state.stop_reason}; run: {rdir}")
    return summary


def _data_notes(exp: Any, main: bool, console: Console) -> None:
    """Print what the data module chose and why (image_folder: decoded once, or streamed)."""
    for note in getattr(exp.data, "run_notes", ()) if main else ():
        console.print(f"data: {note}", markup=False, highlight=False)


def _lock_existing(held: ExitStack, rdir: Path) -> None:
    """Hold the writer lock of an existing run directory for the rest of the run (rank 0 only,
    under torchrun; a folder that is not a run directory is left untouched)."""
    if os.environ.get("RANK", "0") == "0" and (rdir / "config.yaml").is_file():
        held.enter_context(run_lock(rdir))


def _write_outputs(
    exp: Any, rdir: Path, callbacks: list[Any], summary: RunResult, failed: bool, console: Console
) -> None:
    """After the test evaluation (rank 0): the model summary, the report, MLflow's results."""
    from trainlab.tracking.model_summary import write_model_summary

    write_model_summary(exp.model, exp.data, rdir)  # torchinfo's table, for the report
    from trainlab.tracking.attention_maps import write_attention_maps

    write_attention_maps(exp.model, exp.data, exp.task, rdir)  # seq2seq/Transformer: heat maps
    if exp.cfg.train.report:
        from trainlab.reports import build_report

        report = build_report(rdir)
        console.print(f"report: {report}")
    for cb in callbacks:  # MLflow gets the test metrics, the report and the plots
        if isinstance(cb, MLflowLogger):
            cb.log_results(dict(summary), failed=failed)


def _fit(
    exp: Any,
    rdir: Path,
    callbacks: list[Any],
    state: TrainState | None,
    stopper: SignalStop,
    console: Console,
) -> TrainState:
    """``Trainer.fit``, and again from the last good checkpoint after each divergence while
    ``train.nan_policy: rollback`` allows (the same loop, restarted as a resume would)."""
    t = exp.cfg.train
    state = exp.trainer.fit(exp.model, exp.task, exp.data, exp.optimizer, exp.schedule, state)
    while state.diverged and t.nan_policy == "rollback" and stopper.signum is None:
        if state.rollbacks >= t.max_rollbacks:
            state.stop_reason += f"; gave up after {state.rollbacks} rollbacks"
            break
        state = _roll_back(exp, rdir, callbacks, state, console)
        state = exp.trainer.fit(exp.model, exp.task, exp.data, exp.optimizer, exp.schedule, state)
    return state


def _roll_back(
    exp: Any, rdir: Path, callbacks: list[Any], failed: TrainState, console: Console
) -> TrainState:
    """``train.nan_policy: rollback``: the state of the last good checkpoint (a NaN is never
    saved), with every learning rate multiplied by ``train.rollback_lr_factor``."""
    barrier(exp.trainer.dist)
    state = _restore(exp, resolve_checkpoint(rdir, "latest"), callbacks)
    t = exp.cfg.train
    scale_lr(exp.optimizer, exp.schedule, t.rollback_lr_factor)
    state.rollbacks = failed.rollbacks + 1
    if is_main():
        truncate_after(rdir / "metrics.jsonl", state.step)  # the diverged steps are redone
        console.print(
            f"[yellow]{failed.stop_reason.split(';')[0]}: rolled back to step {state.step}, "
            f"learning rate × {t.rollback_lr_factor} (rollback {state.rollbacks} of "
            f"{t.max_rollbacks})"
        )
    return state


def _run_callbacks(
    cfg: Config, rdir: Path, main: bool, base: list[Any], progress: bool | str, console: Console
) -> tuple[list[Any], ModelCheckpoint]:
    """The run's callbacks in event order: signals and the recipe's own first, then (rank 0
    only) the writers: metrics.jsonl, TensorBoard, checkpoints, progress bar."""
    t = cfg.train
    checkpointer = ModelCheckpoint(
        rdir / "checkpoints", monitor=t.monitor, mode=t.monitor_mode,
        every_steps=t.checkpoint_every_steps, keep=t.keep_checkpoints,
        save_initial=t.nan_policy == "rollback",
    )  # fmt: skip
    callbacks = list(base)
    if main:
        callbacks.insert(1, JsonlLogger(rdir / "metrics.jsonl"))
        if t.tensorboard:
            callbacks.insert(2, TensorBoardLogger(rdir / "tb", hist_every=t.hist_every))
        # reports: weight/gradient norms (unless the recipe lists its own monitor), MLflow
        if t.norms and not any(isinstance(cb, WeightMonitor) for cb in base):
            callbacks.insert(2, WeightMonitor(every=t.hist_every, path=str(rdir / "norms.jsonl")))
        if t.mlflow:
            mlf = MLflowLogger(rdir, uri=t.mlflow_uri, experiment=t.mlflow_experiment)
            callbacks.insert(2, mlf)
        if t.checkpoint:
            callbacks.append(checkpointer)
        if progress:  # "lines" (train --no-progress): per-epoch lines without the bar
            callbacks.append(ProgressBar(console, bar=progress != "lines"))
    checkpointer.callbacks = callbacks  # their states go into each checkpoint
    return callbacks, checkpointer


def _finish(
    exp: Any, state: TrainState, ckpt: ModelCheckpoint, rdir: Path, wall: float, console: Console
) -> RunResult:
    """Evaluate the best weights on the test split, write summary.json, print a table."""
    cfg: Config = exp.cfg
    summary = RunResult(
        name=cfg.name,
        epochs=state.epoch,
        steps=state.step,
        wall_s=round(wall, 2),
        stop_reason=state.stop_reason or None,
        rollbacks=state.rollbacks,
        final={k: v for k, v in state.metrics.items() if isinstance(v, (int, float))},
        best=_best(cfg, ckpt, state.history),
        history=state.history,
    )
    if cfg.train.eval_test and exp.data.sizes.get("test", 0) > 0 and not state.diverged:
        if cfg.train.checkpoint and (rdir / "checkpoints" / "best").is_file():
            load_checkpoint(resolve_checkpoint(rdir, "best"), exp.model, prefer_ema=True)
        elif state.ema is not None:
            exp.model.load_state_dict(state.ema.module.state_dict())
        test = _evaluate_split(exp, "test", rdir if is_main() else None)
        if is_main():
            write_json(rdir / "eval_test.json", test)
        summary["test"] = {k: v for k, v in test.items() if isinstance(v, (int, float))}
    summary["run_dir"] = str(rdir)
    summary["memory"] = peak_memory(exp.trainer.device)  # peak RSS; CUDA max allocated
    exploded = task_loss_warnings(exp.task, state.history, exp.data.num_classes)
    if exploded:
        summary["warnings"] = exploded
    if is_main():
        write_json(rdir / "summary.json", dict(summary))
        _print_summary(summary, console)
        for line in exploded:  # loud: the run still ends with exit code 0
            console.print(f"[bold red]warning: {escape(line)}[/]")
    return summary


def _best(cfg: Config, ckpt: ModelCheckpoint, history: list[dict[str, Any]]) -> dict[str, Any]:
    """The monitored metric's best value and epoch: the checkpointer's, or with
    ``train.checkpoint: false`` (no checkpointer ran) the best of the epoch history."""
    t = cfg.train
    best = {"monitor": t.monitor, "value": _finite(ckpt.best), "epoch": ckpt.best_epoch}
    if t.checkpoint:
        return best
    values = [(r.get(t.monitor), r["epoch"]) for r in history]
    scored = [(v, e) for v, e in values if isinstance(v, (int, float)) and math.isfinite(v)]
    if scored:
        pick = max if t.monitor_mode == "max" else min
        value, epoch = pick(scored, key=lambda ve: ve[0])
        best.update(value=value, epoch=epoch)
    return best


def _evaluate_split(exp: Any, split: str, rdir: Path | None = None) -> dict[str, Any]:
    """Every metric of ``split``, curves included (a task's ``test_metrics`` when it has one);
    with ``rdir``, the split's top losses are saved there too (``top_losses_<split>.json``)."""
    from trainlab.tracking.top_losses import TopLosses

    make = getattr(exp.task, "test_metrics", exp.task.metrics)
    metrics = make(exp.data.num_classes).to(exp.trainer.device)
    top = TopLosses.for_task(exp.task) if rdir is not None else None  # reports: top losses
    task = top if top is not None else exp.task
    result = exp.trainer.evaluate(exp.model, task, exp.data.loader(split), split, metrics)
    names = getattr(exp.data, "classes", None)  # the report labels its axes with them
    if names and len(names) == exp.data.num_classes:
        result["classes"] = [str(c) for c in names]
    if top is not None and rdir is not None:
        top.save(rdir, split, result.get("classes"))
    return result


def _finite(x: float) -> float | None:
    return x if x not in (float("inf"), float("-inf")) else None


def _print_summary(summary: RunResult, console: Console) -> None:
    from rich.table import Table

    console.print(f"{summary['name']}: {summary['epochs']} epochs in {summary['wall_s']:.1f}s")
    table = Table()
    table.add_column("metric")
    table.add_column("value", justify="right")
    shown = {**summary.get("test", {})}
    for k in ("val/acc", "val/loss", "train/loss_epoch"):
        if k in summary["final"]:
            shown[k] = summary["final"][k]
    for k, v in shown.items():
        table.add_row(k, f"{v:.4f}")
    console.print(table)


def evaluate_run(
    run_dir: str | Path,
    split: str = "test",
    which: str = "best",
    console: Console | None = None,
    overrides: list[str] | None = None,
) -> dict[str, Any]:
    """Load a run's best (or latest) checkpoint and evaluate it on ``split``; saves
    ``eval_<split>.json`` in the run directory and returns the metrics. ``overrides`` change
    the run's config.yaml for this evaluation only (e.g. ``["task.tta=flip"]``)."""
    rdir = Path(run_dir)
    if not (rdir / "config.yaml").is_file():
        raise CheckpointError(f"{rdir}: not a run directory (no config.yaml)")
    ckpt = resolve_checkpoint(rdir, which)
    use_run_plugins(rdir)
    cfg = load_config(rdir / "config.yaml", overrides)
    with building(cfg):
        exp = build_experiment(cfg)
    if exp.data.sizes.get(split, 0) == 0:
        raise CheckpointError(f"{rdir}: the data has no '{split}' split")
    load_checkpoint(ckpt, exp.model, prefer_ema=True)
    preflight(exp, monitors=False)  # an override that no longer fits the model: one line
    result = _evaluate_split(exp, split, rdir)
    if overrides:
        result["overrides"] = list(overrides)
    write_json(rdir / f"eval_{split}.json", result)
    return result
