"""``trainlab tune``: hyperparameter search with Optuna, every trial an ordinary run.

Each trial draws values for the keys of a search space (:mod:`trainlab.studies.space`), trains
the recipe with them as overrides through :func:`trainlab.run.train_run` into
``<study>/trials/<number>``, and reports the validation monitor (``train.monitor``) after every
epoch, so a pruner can stop a poor trial early (the run ends at the epoch boundary, with its
checkpoint and summary, like an early stop). The study lives in an Optuna storage — by default
``<study>/study.db`` (SQLite) — so running the same command again resumes it: only the missing
number of finished (complete or pruned) trials is run.

Faults: a trial that diverges or raises is recorded as failed with its reason (user attribute
``fail_reason``) and the study goes on. Every running trial sends a heartbeat; a trial whose
worker died (SIGKILL, a lost machine) is marked failed once its heartbeat is stale, and retried
by Optuna's ``RetryFailedTrialCallback`` from its last checkpoint. Several processes (``workers``)
or several machines (``storage="postgresql://…"``) share one study through the storage; each
trial first checks that fewer than ``trials`` non-failed trials were started before it, so the
count of finished trials is exact however the workers race.

>>> result = tune("recipes/synthetic.yaml", space="space.yaml", trials=8)  # doctest: +SKIP
>>> result.best["params"], result.best_overrides                          # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import math
import os
import random
import signal
import socket
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trainlab.config.load import apply_overrides, load_config, parse_config
from trainlab.config.schema import Config
from trainlab.errors import ConfigError, RunInterrupted
from trainlab.studies.space import Dim, as_overrides, grid_values, load_space, space_as_dict
from trainlab.studies.space import suggest as suggest_params

__all__ = ["tune", "TuneResult", "TrialReporter", "SAMPLERS", "PRUNERS"]

SAMPLERS = ("tpe", "random", "cmaes", "gp", "grid")
PRUNERS = ("median", "hyperband", "successive_halving", "none")
FINISHED = ("COMPLETE", "PRUNED")


@dataclass
class TuneResult:
    """What a study holds after :func:`tune`: every trial (``trials.json``), the best finished
    one, the overrides that reproduce it and where the outputs are."""

    study_name: str
    storage: str
    out: Path
    direction: str
    monitor: str
    trials: list[dict[str, Any]]
    best: dict[str, Any] | None
    best_overrides: list[str]
    trained: int  # trials this call ran (0 when the study was already complete)
    files: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


@dataclass
class _Plan:
    """Everything a worker process needs (picklable: it crosses a spawn)."""

    base: dict[str, Any]  # the resolved recipe with the command's overrides
    space: dict[str, Dim]
    trials: int
    sampler: Any  # a name from SAMPLERS or an optuna sampler
    pruner: Any  # a name from PRUNERS or an optuna pruner
    storage: str
    study_name: str
    out: Path
    seed: int
    heartbeat: int
    monitor: str
    workers: int
    threads: int | None  # train.threads forced on every trial (several workers), else None
    plugins: list[str] = field(default_factory=list)  # --import specs, for spawned workers


class TrialReporter:
    """A callback that reports ``monitor`` to an Optuna trial after every validation and, when
    the pruner says so, sets ``state.should_stop`` (the loop ends at the epoch boundary)."""

    def __init__(self, trial: Any, monitor: str) -> None:
        self.trial, self.monitor = trial, monitor
        self.pruned_at: int | None = None

    def on_validation_end(self, state: Any) -> None:
        value = state.metrics.get(self.monitor)
        if not isinstance(value, (int, float)) or not math.isfinite(value):
            return  # a NaN is the divergence guard's business, not the pruner's
        with warnings.catch_warnings():  # a retried trial re-reports inherited epochs
            warnings.simplefilter("ignore")
            self.trial.report(float(value), state.epoch)
        if self.pruned_at is None and self.trial.should_prune():
            self.pruned_at = state.epoch
            state.should_stop = True
            state.stop_reason = (f"pruned by Optuna after epoch {state.epoch} "
                                 f"({self.monitor} {value:.4g})")


def tune(
    recipe: str | Path | Config,
    overrides: list[str] | None = None,
    space: str | Path | dict[str, Dim] = "space.yaml",
    trials: int = 20,
    sampler: Any = "tpe",
    pruner: Any = "median",
    storage: str | None = None,
    study_name: str | None = None,
    workers: int = 1,
    out: str | Path | None = None,
    seed: int = 0,
    heartbeat: int = 10,
    plots: bool = True,
    console: Any = None,
) -> TuneResult:
    """Run (or resume) an Optuna study over ``space`` until it holds ``trials`` finished trials.

    ``sampler``/``pruner`` are names (``SAMPLERS``/``PRUNERS``) or Optuna objects; ``storage``
    an RDB URL (default ``sqlite:///<out>/study.db``); ``out`` the study folder (default
    ``runs/tune-<study name>``); ``heartbeat`` seconds between a trial's heartbeats (stale after
    three missed); ``plots=False`` skips the PNGs. Everything is checked before the first run
    starts.

    >>> r = tune("recipes/synthetic.yaml", space="space.yaml", trials=4)  # doctest: +SKIP
    >>> r.best_overrides                                                 # doctest: +SKIP
    ['optim.lr=0.0123']
    """
    from rich.console import Console

    console = console or Console(stderr=True)
    plan = _plan(recipe, overrides, space, trials, sampler, pruner, storage, study_name,
                 workers, out, seed, heartbeat)  # fmt: skip
    study = _open_study(plan, create=True)  # an unreachable storage fails here, before any run
    plan.out.mkdir(parents=True, exist_ok=True)
    before = _count(study)
    console.print(f"study '{plan.study_name}' in {_shown(plan.storage)}: {before} of "
                  f"{plan.trials} trials finished; {plan.workers} worker(s)")  # fmt: skip
    interrupted = _run_workers(plan, console, study)
    from trainlab.studies.tune_report import write_outputs

    result = write_outputs(plan, study, trained=max(0, _count(study) - before), plots=plots)
    if interrupted is not None:
        raise RunInterrupted(
            f"study interrupted; its trials are saved in {_shown(plan.storage)}: run the same "
            "command to resume", interrupted,
        )  # fmt: skip
    return result


def _plan(
    recipe: str | Path | Config, overrides: list[str] | None, space: Any, trials: int,
    sampler: Any, pruner: Any, storage: str | None, study_name: str | None, workers: int,
    out: str | Path | None, seed: int, heartbeat: int,
) -> _Plan:  # fmt: skip
    """Check every argument and the space against the recipe; nothing is written."""
    from trainlab.experiment import check_config

    cfg = recipe if isinstance(recipe, Config) else load_config(recipe, overrides)
    if isinstance(recipe, Config) and overrides:
        cfg = parse_config(apply_overrides(cfg.model_dump(mode="json"), overrides))
    check_config(cfg)
    dims = space if isinstance(space, dict) else load_space(space, cfg)
    if trials < 1 or workers < 1 or heartbeat < 1:
        raise ConfigError("tune: --trials, --workers and the heartbeat must be at least 1")
    if isinstance(sampler, str) and sampler not in SAMPLERS:
        raise ConfigError(f"tune --sampler: unknown '{sampler}'; valid: {', '.join(SAMPLERS)}")
    if isinstance(pruner, str) and pruner not in PRUNERS:
        raise ConfigError(f"tune --pruner: unknown '{pruner}'; valid: {', '.join(PRUNERS)}")
    if sampler == "grid":
        size = math.prod(len(v) for v in grid_values(dims).values())
        trials = min(trials, size)  # the grid has no more points than that
    name = study_name or cfg.name
    folder = Path(out) if out is not None else Path("runs") / f"tune-{name}"
    cores = os.cpu_count() or 1
    threads = None
    if workers > 1:  # never more threads than cores: oversubscription is 10-60x slower
        threads = min(cfg.train.threads or cores, max(1, cores // workers))
    url = storage or f"sqlite:///{folder.resolve() / 'study.db'}"
    return _Plan(cfg.model_dump(mode="json"), dims, trials, sampler, pruner, url, name,
                 folder.resolve(), seed, heartbeat, cfg.train.monitor, workers,
                 threads, _plugin_specs())  # fmt: skip


def _plugin_specs() -> list[str]:
    """The plug-ins this process imported by ``--import`` (spawned workers import them too)."""
    try:
        from trainlab.plugins import loaded_plugins
    except ImportError:
        return []
    return [p.spec for p in loaded_plugins() if p.source != "entry_point"]


def _shown(url: str) -> str:
    """The storage URL without its password."""
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return url


def _storage(plan: _Plan) -> Any:
    """Optuna's RDB storage with heartbeats and the retry of trials whose worker died."""
    import optuna
    from optuna.storages import RDBStorage

    if plan.storage.startswith("sqlite:///"):
        Path(plan.storage[len("sqlite:///") :]).parent.mkdir(parents=True, exist_ok=True)
        kwargs: dict[str, Any] = {"connect_args": {"timeout": 60}}  # workers wait for the lock
    elif plan.storage.startswith("postgresql"):
        kwargs = {"connect_args": {"connect_timeout": 10}, "pool_pre_ping": True}
    else:
        kwargs = {}
    url = plan.storage
    if url.startswith(("postgresql://", "postgres://")):  # the driver trainlab[postgres] brings
        url = "postgresql+psycopg://" + url.split("://", 1)[1]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        retry = _retry_callback(max_retry=3, inherit_intermediate_values=True)
        for attempt in range(6):
            try:
                return RDBStorage(
                    url, engine_kwargs=kwargs, heartbeat_interval=plan.heartbeat,
                    grace_period=3 * plan.heartbeat, **retry,
                )  # fmt: skip
            except Exception as e:
                err = e
                if not _creation_race(e) or attempt == 5:
                    break
                time.sleep(0.2 + random.random())  # another worker is creating the tables
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        if "DB access module" in reason:
            reason += " (for PostgreSQL: pip install 'trainlab[postgres]')"
        raise ConfigError(f"tune --storage {_shown(plan.storage)}: cannot open it: "
                          f"{reason[:300]}") from None  # fmt: skip


def _creation_race(err: Exception) -> bool:
    """Two workers creating Optuna's tables in a new database at once: the loser sees a
    duplicate (PostgreSQL's catalog) and succeeds when it tries again."""
    text = str(err)
    return type(err).__name__ == "IntegrityError" or "duplicate key" in text or (
        "already exists" in text)  # fmt: skip


def _retry_callback(**kw: Any) -> dict[str, Any]:
    """Optuna's retry of heartbeat-stale trials, under its name in this Optuna version
    (``RetryHeartbeatStaleTrialCallback`` from 4.9, ``RetryFailedTrialCallback`` before)."""
    import optuna.storages as st

    if hasattr(st, "RetryHeartbeatStaleTrialCallback"):
        return {"heartbeat_stale_trial_callback": st.RetryHeartbeatStaleTrialCallback(**kw)}
    return {"failed_trial_callback": st.RetryFailedTrialCallback(**kw)}


def _direction(plan: _Plan) -> str:
    return "maximize" if plan.base["train"]["monitor_mode"] == "max" else "minimize"


def _open_study(plan: _Plan, create: bool = False, worker: int = 0) -> Any:
    """Create or load the study; on load, check it was started with the same recipe and space."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = _storage(plan)
    study = optuna.create_study(
        storage=storage, study_name=plan.study_name, direction=_direction(plan),
        load_if_exists=True, sampler=_sampler(plan, worker), pruner=_pruner(plan),
    )  # fmt: skip
    if create:
        record = {"recipe": plan.base, "space": space_as_dict(plan.space)}
        known = study.user_attrs.get("trainlab")
        if known is None:
            study.set_user_attr("trainlab", record)
        elif known != record:
            what = "search space" if known["space"] != record["space"] else "recipe"
            diff = _first_difference(known[what.split()[-1]], record[what.split()[-1]])
            raise ConfigError(
                f"tune: study '{plan.study_name}' in {_shown(plan.storage)} was started with "
                f"another {what} ({diff}); give --study NAME for a new study"
            )
    return study


def _first_difference(a: Any, b: Any, path: str = "") -> str:
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b), key=str):
            if a.get(key) != b.get(key):
                return _first_difference(a.get(key), b.get(key), f"{path}.{key}" if path else key)
    return f"{path or 'value'}: {a!r} then, {b!r} now"


def _sampler(plan: _Plan, worker: int) -> Any:
    import optuna

    if not isinstance(plan.sampler, str):
        return plan.sampler
    seed = plan.seed + 1000 * worker  # workers must not propose the same points
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        if plan.sampler == "tpe":  # constant liar: parallel workers avoid each other's points
            return optuna.samplers.TPESampler(seed=seed, constant_liar=True)
        if plan.sampler == "random":
            return optuna.samplers.RandomSampler(seed=seed)
        if plan.sampler == "cmaes":
            return optuna.samplers.CmaEsSampler(seed=seed, warn_independent_sampling=False)
        if plan.sampler == "gp":
            return optuna.samplers.GPSampler(seed=seed)
        return optuna.samplers.GridSampler(grid_values(plan.space), seed=seed)


def _pruner(plan: _Plan) -> Any:
    import optuna

    if not isinstance(plan.pruner, str):
        return plan.pruner
    epochs = int(plan.base["train"]["epochs"])
    if plan.pruner == "median":  # steps are epochs (1, 2, …): epoch 1 is too noisy to judge
        return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=2)
    if plan.pruner == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=epochs)
    if plan.pruner == "successive_halving":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=1)
    return optuna.pruners.NopPruner()


def _count(study: Any) -> int:
    """Finished (complete or pruned) trials in the study."""
    return sum(1 for t in study.get_trials(deepcopy=False) if t.state.name in FINISHED)


def _run_workers(plan: _Plan, console: Any, study: Any) -> int | None:
    """Run the worker loop here (one worker) or in ``plan.workers`` spawned processes; returns
    the signal number if the study was interrupted."""
    from trainlab.studies.tune_worker import run_worker, spawn_workers

    if _count(study) >= plan.trials:
        console.print("the study is complete: nothing to train")
        return None
    if plan.workers == 1:
        return run_worker(plan, 0, console, study)
    return spawn_workers(plan, console)


def _stop_signal(err: RunInterrupted) -> int:
    return err.exit_code - 128 if err.exit_code > 128 else int(signal.SIGINT)


def run_trial(plan: _Plan, trial: Any, state: dict[str, Any]) -> float:
    """The objective: one ordinary run with the trial's values; see the module docstring."""
    import optuna

    if _surplus(plan, trial):
        trial.set_user_attr("fail_reason", f"surplus: the study already has {plan.trials} trials")
        raise _Surplus(f"the study already has {plan.trials} trials")
    params = suggest_params(plan.space, trial)
    resume = _resumable(trial)
    rdir = resume or plan.out / "trials" / str(trial.number)
    trial.set_user_attr("run_dir", str(rdir))
    trial.set_user_attr("overrides", as_overrides(params))
    trial.set_user_attr("worker", f"{socket.gethostname()}:{os.getpid()}")
    reporter = TrialReporter(trial, plan.monitor)
    summary = _train(plan, trial, params, rdir, resume, reporter, state)
    trial.set_user_attr("epochs", summary["epochs"])
    if reporter.pruned_at is not None:
        trial.set_user_attr("pruned_at_epoch", reporter.pruned_at)
        raise optuna.TrialPruned(f"pruned after epoch {reporter.pruned_at}")
    value = summary["best"]["value"]
    if value is None or not math.isfinite(value):
        reason = f"no finite {plan.monitor} (does the data have a validation split?)"
        trial.set_user_attr("fail_reason", reason)
        raise ConfigError(reason)
    return float(value)


def _train(
    plan: _Plan, trial: Any, params: dict[str, Any], rdir: Path, resume: Path | None,
    reporter: TrialReporter, state: dict[str, Any],
) -> dict[str, Any]:  # fmt: skip
    """``train_run`` for one trial (or its continuation); a failure's reason is recorded."""
    from trainlab.run import train_run

    items = as_overrides(params) + ([f"train.threads={plan.threads}"] if plan.threads else [])
    t0 = time.perf_counter()
    try:
        cfg = parse_config(apply_overrides(plan.base, items))
        with _trial_output(plan.out / "logs" / f"{trial.number}.log") as console:
            return train_run(
                cfg, run_dir=None if resume else rdir, resume=resume, progress=False,
                console=console, extra_callbacks=[reporter],
            )  # fmt: skip
    except RunInterrupted as e:  # Ctrl-C/SIGTERM: checkpointed; continued on the next run
        trial.study.enqueue_trial(params, user_attrs={"run_dir": str(rdir)})
        trial.set_user_attr("fail_reason", f"interrupted ({e}); continued by the next run")
        state["interrupted"] = _stop_signal(e)
        trial.study.stop()
        raise
    except Exception as e:
        trial.set_user_attr("fail_reason", f"{type(e).__name__}: {e}"[:2000])
        raise
    finally:
        trial.set_user_attr("wall_s", round(time.perf_counter() - t0, 2))


class _Surplus(Exception):
    """A trial started after the study had reached its count (workers raced)."""


def _surplus(plan: _Plan, trial: Any) -> bool:
    """True when ``plan.trials`` non-failed trials were created before this one: running it
    could make the count of finished trials exceed ``trials``. (The trials before it are all
    complete, pruned, running or waiting; each of them can only end finished or failed.)"""
    live = ("COMPLETE", "PRUNED", "RUNNING", "WAITING")
    earlier = [t for t in trial.study.get_trials(deepcopy=False) if t.number < trial.number]
    return sum(1 for t in earlier if t.state.name in live) >= plan.trials


def _resumable(trial: Any) -> Path | None:
    """A retried or continued trial carries the run directory of the one before it: continue
    from that run's latest checkpoint when it has one."""
    from trainlab.errors import CheckpointError
    from trainlab.train.checkpoint import resolve_checkpoint

    previous = trial.user_attrs.get("run_dir")
    if not previous:
        return None
    try:
        resolve_checkpoint(Path(previous), "latest")
    except CheckpointError:
        return None
    return Path(previous)


@contextlib.contextmanager
def _trial_output(path: Path) -> Any:
    """A trial's console output (its table, ``run: DIR``) goes to ``logs/<number>.log``."""
    from rich.console import Console

    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as fh, contextlib.redirect_stdout(fh):
        yield Console(file=fh, width=120)
