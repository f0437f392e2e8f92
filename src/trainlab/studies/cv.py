"""Cross-validation: k-fold, stratified k-fold, repeated k-fold and leave-one-out over a
recipe's training data (its train+val pool; the test split is never touched).

Each fold is an ordinary run directory ``<out>/fold_<repeat>_<index>`` whose data section is a
``cv_fold`` (see :mod:`trainlab.data.folds`): ``trainlab train <out>/fold_0_2/config.yaml``
trains the same fold again. After the folds: mean ± std and the 95 % interval of every
validation metric, the out-of-fold confusion matrix and the per-fold curves
(``cv.json``, ``cv.md``, ``cv.png``); ``refit`` then trains on the whole pool (``<out>/refit``).
Running the same study again skips the folds that finished.

>>> res = cross_validate("r.yaml", ["train.epochs=2"], folds=5, stratified=True)  # doctest: +SKIP
>>> res.metrics["final"]["val/acc"].mean                                          # doctest: +SKIP
"""

from __future__ import annotations

import copy
import hashlib
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console

from trainlab.config.load import load_config, parse_config
from trainlab.config.schema import Config
from trainlab.errors import ConfigError, RunInterrupted
from trainlab.studies.cv_runner import FoldJob, cpu_cores, fold_done, run_folds
from trainlab.studies.stats import Summary

__all__ = ["cross_validate", "CVResult", "CVPlan", "plan_cv"]

# Above this many folds a fold prints no line of its own: one progress line for all of them.
_QUIET_ABOVE = 20
# Light fold runs (leave-one-out by default): metrics only, none of the per-run artefacts.
_LIGHT = {"report": False, "tensorboard": False, "norms": False, "checkpoint": False,
          "mlflow": False}  # fmt: skip


@dataclass
class CVPlan:
    """What a cross-validation study will run, decided (and checked) before any run starts."""

    cfg: Config
    scheme: str  # kfold | stratified | loo
    folds: int
    repeats: int
    seed: int
    pool_size: int
    test_size: int
    classes: list[str] | None
    out: Path
    fingerprint: str
    jobs: list[FoldJob]
    threads: int
    workers: int
    light: bool
    refit_config: dict[str, Any] | None


@dataclass
class CVResult:
    """The study's figures: ``metrics[kind][key]`` is a :class:`Summary` over folds
    (``kind`` ``final``: end of training; ``best``: the epoch best by ``train.monitor``)."""

    out: Path
    plan: dict[str, Any]
    folds: list[dict[str, Any]]
    metrics: dict[str, dict[str, Summary]]
    oof: dict[str, Any] | None
    refit: dict[str, Any] | None = None
    trained: list[str] = field(default_factory=list)  # folds trained by this call

    def as_dict(self) -> dict[str, Any]:
        metrics = {k: {m: s.as_dict() for m, s in v.items()} for k, v in self.metrics.items()}
        folds = [{k: v for k, v in f.items() if k != "history"} for f in self.folds]
        return {**self.plan, "metrics": metrics, "oof": self.oof, "folds": folds,
                "refit": self.refit}  # fmt: skip


def _scheme(folds: int | None, stratified: bool, loo: bool, repeats: int) -> tuple[str, int]:
    if loo and folds is not None:
        raise ConfigError("--loo: leave-one-out makes one fold per sample; drop --folds")
    if loo and stratified:
        raise ConfigError("--loo: leave-one-out cannot be stratified; drop --stratified")
    if loo and repeats != 1:
        raise ConfigError("--loo: leave-one-out has one arrangement only; drop --repeats")
    if repeats < 1:
        raise ConfigError(f"--repeats: must be at least 1 (got {repeats})")
    folds = 5 if folds is None else folds
    if not loo and folds < 2:
        raise ConfigError(f"--folds: must be at least 2 (got {folds})")
    return ("loo" if loo else "stratified" if stratified else "kfold"), folds


def _base_dict(cfg: Config) -> dict[str, Any]:
    from trainlab.experiment import check_config, resolved_config

    check_config(cfg)  # unknown models, options, registry names: before anything runs
    if cfg.data.name == "cv_fold":
        raise ConfigError("data.name: this recipe already trains on one cv_fold; give its source")
    base = cfg.model_dump(mode="json")
    # The data source with every default spelled out; the other sections as written (the model's
    # sizes are filled from the data by each run, as for any recipe).
    base["data"] = resolved_config(cfg)["data"]
    base["data"].setdefault("seed", cfg.seed)
    return base


def _fold_config(base: dict[str, Any], fold: dict[str, Any], train: dict[str, Any],
                 name: str) -> dict[str, Any]:  # fmt: skip
    cfg = copy.deepcopy(base)
    cfg["name"] = f"{base['name']}-{name}"
    cfg["data"] = {"name": "cv_fold", "source": cfg["data"], **fold}
    cfg["train"].update(train)
    return cfg


def plan_cv(
    recipe: str | Path | Config, overrides: list[str] | None = None, *, folds: int | None = None,
    stratified: bool = False, loo: bool = False, repeats: int = 1, workers: int = 1,
    refit: bool = False, out: str | Path | None = None, light: bool | None = None,
    runs_root: str | Path = "runs",
) -> CVPlan:  # fmt: skip
    """Check every argument and the recipe, load the data once and list the fold runs.
    Every mistake is a one-line :class:`~trainlab.errors.TrainlabError` raised here."""
    from trainlab.data.folds import fold_splits

    scheme, k = _scheme(folds, stratified, loo, repeats)
    if workers < 1:
        raise ConfigError(f"--workers: must be at least 1 (got {workers})")
    cfg = recipe if isinstance(recipe, Config) else load_config(recipe, overrides)
    base = _base_dict(cfg)
    n, labels, test_size, classes = _pool(base, cfg.seed, stratified)
    splits = fold_splits(n, labels, scheme=scheme, folds=k, seed=cfg.seed, repeats=repeats)
    light = scheme == "loo" if light is None else light
    cores = cpu_cores()
    # Never more busy threads than cores (oversubscription made steps 10-60x slower here):
    # at most one worker per core, cores // workers torch threads each.
    workers = min(workers, cores)
    threads = max(1, min(cfg.train.threads or cores, cores // workers))
    out_dir, fingerprint = _where(cfg, (scheme, k, repeats), out, runs_root)
    k = len(splits) if scheme == "loo" else k
    fold_opts = {"scheme": scheme, "folds": k, "repeats": repeats, "fold_seed": cfg.seed}
    train = {"eval_test": False, "threads": threads, **(_LIGHT if light else {})}
    if cfg.train.nan_policy == "rollback":
        train.pop("checkpoint", None)  # rolling back needs its checkpoints
    jobs = []
    for r, i, _, _ in splits:
        name = f"fold_{r}_{i}"
        conf = _fold_config(base, {**fold_opts, "repeat": r, "index": i}, train, name)
        jobs.append(FoldJob(name, r, i, conf, str(out_dir / name)))
    _check_fold_config(jobs[0].config)
    refit_cfg = None
    if refit:
        refit_train = {"threads": max(1, min(cfg.train.threads or cores, cores))}
        refit_cfg = _fold_config(base, {**fold_opts, "scheme": "all"}, refit_train, "refit")
    return CVPlan(cfg, scheme, k, repeats, cfg.seed, n, test_size, classes, out_dir, fingerprint,
                  jobs, threads, workers, light, refit_cfg)  # fmt: skip


def _where(
    cfg: Config, scheme: tuple[str, int, int], out: str | Path | None, runs_root: str | Path
) -> tuple[Path, str]:
    """The study folder and the fingerprint of what decides its results (recipe, overrides,
    folds, seed; not workers or threads): the same command finds the same folder again."""
    name, k, repeats = scheme
    # What the user set, not the defaults: a new option elsewhere must not move the folder.
    given = cfg.model_dump(mode="json", exclude_defaults=True)
    key = {"cfg": given, "scheme": name, "folds": k, "repeats": repeats, "seed": cfg.seed}
    fingerprint = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:8]
    tag = "loo" if name == "loo" else f"{name}{k}" + (f"x{repeats}" if repeats > 1 else "")
    default = Path(runs_root) / f"{cfg.name}-cv-{tag}-{fingerprint}"
    return (Path(out) if out is not None else default), fingerprint


def _pool(
    base: dict[str, Any], seed: int, stratified: bool
) -> tuple[int, Any, int, list[str] | None]:
    """Size and class labels of the training pool, the test split's size, the class names."""
    from trainlab.data.folds import build_source, pool_labels, pool_of

    source = build_source(base["data"], seed)
    source.load()
    x, y, _ = pool_of(source)
    labels = pool_labels(source, y)
    if stratified and labels is None:
        raise ConfigError(
            "--stratified: the data's target is not a class label (regression); use plain k-fold"
        )
    return len(x), labels, len(source.splits["test"][0]), getattr(source, "classes", None)


def _check_fold_config(conf: dict[str, Any]) -> None:
    from trainlab.experiment import check_config

    check_config(parse_config(conf))


def _plan_record(plan: CVPlan) -> dict[str, Any]:
    return {
        "recipe": plan.cfg.name, "scheme": plan.scheme, "folds": plan.folds,
        "repeats": plan.repeats, "seed": plan.seed, "pool_size": plan.pool_size,
        "test_size": plan.test_size, "classes": plan.classes, "fingerprint": plan.fingerprint,
        "runs": [j.name for j in plan.jobs], "monitor": plan.cfg.train.monitor,
        "monitor_mode": plan.cfg.train.monitor_mode,
    }  # fmt: skip


def _claim_folder(plan: CVPlan) -> None:
    """Create the study folder, or check that the one there holds this same study."""
    from trainlab.tracking.rundir import write_json

    index = plan.out / "cv.json"
    if index.is_file():
        old = json.loads(index.read_text()).get("fingerprint")
        if old != plan.fingerprint:
            raise ConfigError(
                f"--out {plan.out}: holds another cross-validation (other recipe, overrides or "
                "folds); nothing was changed — choose another folder"
            )
        return
    if plan.out.exists() and any(plan.out.iterdir()):
        raise ConfigError(f"--out {plan.out}: exists and is not a cross-validation folder")
    plan.out.mkdir(parents=True, exist_ok=True)
    write_json(index, {**_plan_record(plan), "status": "running"})


def cross_validate(
    recipe: str | Path | Config, overrides: list[str] | None = None, *, folds: int | None = None,
    stratified: bool = False, loo: bool = False, repeats: int = 1, workers: int = 1,
    refit: bool = False, out: str | Path | None = None, light: bool | None = None,
    runs_root: str | Path = "runs", console: Console | None = None,
) -> CVResult:  # fmt: skip
    """Cross-validate a recipe; see the module docstring. ``folds`` defaults to 5; ``loo``
    makes one fold per pool sample; ``repeats`` > 1 repeats k-fold with fresh shuffles;
    ``workers`` runs that many folds at once (torch threads: cores // workers each); ``light``
    (default: on for leave-one-out) skips checkpoints, TensorBoard and reports per fold.

    >>> res = cross_validate("recipes/iris_mlp.yaml", folds=5, stratified=True)  # doctest: +SKIP
    >>> res.oof["acc"], res.out                                                 # doctest: +SKIP
    """
    from trainlab.studies.cv_report import print_table, report

    console = console or Console(stderr=True)
    plan = plan_cv(recipe, overrides, folds=folds, stratified=stratified, loo=loo,
                   repeats=repeats, workers=workers, refit=refit, out=out, light=light,
                   runs_root=runs_root)  # fmt: skip
    _claim_folder(plan)
    pending = [j for j in plan.jobs if fold_done(Path(j.run_dir)) is None]
    console.print(
        f"cv: {plan.cfg.name}, {_describe(plan)} over {plan.pool_size} training samples "
        f"(test split of {plan.test_size} untouched); {len(plan.jobs) - len(pending)} done, "
        f"{len(pending)} to train, {plan.workers} worker(s) × {plan.threads} thread(s)"
    )
    _train(plan, pending, console)
    records = [fold_done(Path(j.run_dir)) for j in plan.jobs]
    refit_summary = _refit(plan, console) if plan.refit_config is not None else None
    result = report(plan.out, _plan_record(plan), [r for r in records if r is not None],
                    refit_summary, [j.name for j in pending])  # fmt: skip
    print_table(result, console)
    return result


def _describe(plan: CVPlan) -> str:
    if plan.scheme == "loo":
        return f"leave-one-out ({plan.folds} folds)"
    what = "stratified " if plan.scheme == "stratified" else ""
    rep = f" × {plan.repeats} repeats" if plan.repeats > 1 else ""
    return f"{what}{plan.folds}-fold{rep}"


def _train(plan: CVPlan, pending: list[FoldJob], console: Console) -> None:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    if not pending:
        return
    per_fold = len(plan.jobs) <= _QUIET_ABOVE
    monitor = plan.cfg.train.monitor
    cols = ("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
            TimeElapsedColumn())  # fmt: skip
    with Progress(*cols, console=console, transient=True) as bar:
        task = bar.add_task("cv folds", total=len(pending))

        def done(rec: dict[str, Any]) -> None:
            bar.advance(task)
            if per_fold:
                value = rec["final"].get(monitor)
                shown = f"{monitor} {value:.4f}" if isinstance(value, float) else rec["status"]
                console.print(f"{rec['fold']}: {shown}  ({rec['wall_s']:.1f}s)")

        try:
            run_folds(pending, workers=plan.workers, threads=plan.threads, on_done=done)
        except RunInterrupted as e:  # the fold's own message would say `train --resume`
            raise RunInterrupted(
                f"cross-validation interrupted ({str(e).split(';')[0]}, checkpoint saved); "
                "the same command continues, keeping the finished folds",
                e.exit_code - 128,
            ) from None


def _refit(plan: CVPlan, console: Console) -> dict[str, Any]:
    """The final model: an ordinary run on the whole pool, tested on the test split."""
    from trainlab.run import train_run
    from trainlab.train.checkpoint import latest_checkpoint

    rdir = plan.out / "refit"
    if (rdir / "summary.json").is_file():
        return json.loads((rdir / "summary.json").read_text())
    assert plan.refit_config is not None
    console.print(f"refit: training on all {plan.pool_size} training samples")
    ckpts = rdir / "checkpoints"
    if ckpts.is_dir() and latest_checkpoint(ckpts) is not None:  # an interrupted refit
        return dict(train_run(None, resume=rdir, console=console))  # type: ignore[arg-type]
    if rdir.exists():
        shutil.rmtree(rdir)  # stopped before its first checkpoint: nothing to keep
    return dict(train_run(parse_config(plan.refit_config), run_dir=rdir, console=console))
