"""``trainlab tune``: studies of ordinary runs, resume, pruning, failures, dead workers."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import optuna
import pytest

from trainlab.cli.main import main
from trainlab.config.load import load_config
from trainlab.errors import RunInterrupted
from trainlab.studies.tune import _open_study, _plan, tune

RECIPE = """
name: digits_mlp
seed: 0
data: {name: digits, batch_size: 64}
model: {name: mlp, hidden: [16]}
task: {name: classification}
optim: {name: sgd, lr: 0.05}
train: {epochs: 3, threads: 1, tensorboard: false, report: false, norms: false, log_every: 20}
"""
SPACE = """
optim.lr: {type: float, low: 0.01, high: 0.5, log: true}
model.hidden.0: {type: int, low: 8, high: 32, step: 8}
"""


@pytest.fixture
def study_files(recipe, tmp_path):
    space = tmp_path / "space.yaml"
    space.write_text(SPACE)
    return recipe(RECIPE), space, tmp_path / "study"


def _states(out: Path) -> list[str]:
    return [t["state"] for t in json.loads((out / "trials.json").read_text())]


def test_four_trials_then_rerun_trains_nothing(study_files, capsys):
    recipe, space, out = study_files
    res = tune(recipe, ["train.epochs=2"], space=space, trials=4, sampler="random",
               pruner="none", out=out)  # fmt: skip
    assert [t["state"] for t in res.trials] == ["COMPLETE"] * 4 and res.trained == 4
    for t in res.trials:  # each trial is an ordinary run directory
        rdir = Path(t["run_dir"])
        assert rdir == out / "trials" / str(t["number"])
        summary = json.loads((rdir / "summary.json").read_text())
        assert summary["best"]["value"] == pytest.approx(t["value"])
        assert list(t["intermediate"]) == ["1", "2"]  # every epoch reported
    best = max(res.trials, key=lambda t: t["value"])
    assert res.best["number"] == best["number"]
    # best.yaml is a complete recipe with the best trial's values
    cfg = load_config(out / "best.yaml")
    assert cfg.optim.lr == pytest.approx(best["params"]["optim.lr"])
    assert cfg.model.options()["hidden"] == [best["params"]["model.hidden.0"]]
    assert cfg.train.epochs == 2 and res.best_overrides[0].startswith("optim.lr=")
    for name in ("history.png", "parallel.png", "importances.png", "trials.html", "study.db"):
        assert (out / name).is_file(), name
    page = (out / "trials.html").read_text()
    assert page.count("<tr class=") == 4 and "optuna-dashboard sqlite:///" in page
    mtimes = {p: p.stat().st_mtime_ns for p in (out / "trials").rglob("summary.json")}
    # the same command again: the study is complete, nothing is trained
    code = main(["tune", str(recipe), "train.epochs=2", "--space", str(space), "--trials", "4",
                 "--sampler", "random", "--pruner", "none", "--out", str(out), "--no-plots"])
    assert code == 0
    printed = capsys.readouterr().out
    assert f"override: {' '.join(res.best_overrides)}" in printed
    assert "train it: trainlab train" in printed and "complete" in printed
    assert {p: p.stat().st_mtime_ns for p in (out / "trials").rglob("summary.json")} == mtimes
    assert _states(out) == ["COMPLETE"] * 4


def test_more_trials_later_runs_only_the_missing_ones(study_files):
    recipe, space, out = study_files
    args = dict(space=space, sampler="random", pruner="none", out=out, plots=False)
    assert tune(recipe, ["train.epochs=1"], trials=2, **args).trained == 2
    res = tune(recipe, ["train.epochs=1"], trials=3, **args)
    assert res.trained == 1 and [t["number"] for t in res.trials] == [0, 1, 2]
    with pytest.raises(Exception, match="another recipe .*train.epochs: 1 then, 2 now"):
        tune(recipe, ["train.epochs=2"], trials=3, **args)


@pytest.mark.parametrize(
    "space_text, words",
    [
        ("optim.lrr: {type: float, low: 0.1, high: 1}", ["optim.lrr", "did you mean 'lr'"]),
        ("optim.lr: {type: float, low: 1, high: 0.1}", ["optim.lr", "greater than high"]),
        ("optim.lr: {type: float, low: 0, high: 1, log: true}", ["optim.lr", "low > 0"]),
        ("optim.lr: {type: int, low: 0.5, high: 1}", ["optim.lr.low", "integer"]),
        ("train.epochs: {type: int, low: 0, high: 3}", ["train.epochs", "refuses"]),
    ],
)
def test_bad_space_is_exit_2_before_any_run(study_files, capsys, space_text, words):
    recipe, space, out = study_files
    space.write_text(space_text)
    code = main(["tune", str(recipe), "--space", str(space), "--trials", "3", "--out", str(out)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and not out.exists()
    assert err.startswith("trainlab: error:") and "\n" not in err and str(space) in err
    for w in words:
        assert w in err


def test_unreachable_storage_is_one_line_exit_2(study_files, capsys):
    recipe, space, out = study_files
    url = "postgresql://nobody:secret@127.0.0.1:9/nodb"  # port 9: nothing listens
    code = main(["tune", str(recipe), "--space", str(space), "--trials", "2",
                 "--storage", url, "--out", str(out)])  # fmt: skip
    err = capsys.readouterr().err.strip()
    assert code == 2 and not out.exists()
    assert "\n" not in err and "postgresql://nobody:***@127.0.0.1:9/nodb" in err
    assert "secret" not in err


def test_grid_sampler_needs_steps(study_files, capsys):
    recipe, space, out = study_files
    code = main(["tune", str(recipe), "--space", str(space), "--trials", "3", "--sampler",
                 "grid", "--out", str(out)])  # fmt: skip
    assert code == 2 and "optim.lr: the grid sampler needs a step" in capsys.readouterr().err
    assert not out.exists()


def test_pruner_stops_trials_at_the_epoch_boundary(study_files):
    recipe, space, out = study_files
    # val/acc is never above 1.1: the threshold pruner prunes each trial after epoch 1
    pruner = optuna.pruners.ThresholdPruner(lower=1.1)
    res = tune(recipe, space=space, trials=2, sampler="random", pruner=pruner, out=out,
               plots=False)  # fmt: skip
    assert [t["state"] for t in res.trials] == ["PRUNED", "PRUNED"]
    for t in res.trials:
        summary = json.loads((Path(t["run_dir"]) / "summary.json").read_text())
        assert summary["epochs"] == 1 and "pruned by Optuna after epoch 1" in summary["stop_reason"]
        assert t["pruned_at_epoch"] == 1 and list(t["intermediate"]) == ["1"]
    assert res.best is None and not (out / "best.yaml").exists()


def test_diverging_and_raising_trials_fail_and_the_study_goes_on(study_files, recipe):
    recipe_path, space, out = study_files
    # val_fraction 1.5 passes the recipe's checks (types and names) but the data source
    # refuses it when the trial builds it (ConfigError inside the trial)
    space.write_text(SPACE + "data.val_fraction: [0.2, 1.5]\n")
    plan = _plan(recipe_path, ["train.epochs=1"], space, 2, "random", "none", None, None, 1,
                 out, 0, 10)  # fmt: skip
    study = _open_study(plan, create=True)
    study.enqueue_trial({"optim.lr": 1.0e12, "model.hidden.0": 16, "data.val_fraction": 0.2})
    res = tune(recipe_path, ["train.epochs=1"], space=space, trials=2, sampler="random",
               pruner="none", out=out, plots=False)  # fmt: skip
    states = [t["state"] for t in res.trials]
    assert states.count("COMPLETE") == 2
    first = res.trials[0]
    assert first["state"] == "FAIL" and "TrainingDiverged" in first["reason"]
    raised = [t for t in res.trials if t["params"]["data.val_fraction"] == 1.5]
    assert raised and all(t["state"] == "FAIL" and "Error" in t["reason"] for t in raised)


def test_trial_of_a_dead_worker_is_retried(study_files):
    """A worker that dies mid-trial (simulated: a running trial whose heartbeat stopped) gets
    its trial marked failed and retried with the same values; the count stays exact."""
    recipe, space, out = study_files
    plan = _plan(recipe, ["train.epochs=1"], space, 2, "random", "none", None, None, 1, out,
                 0, 1)  # fmt: skip
    out.mkdir(parents=True)
    study = _open_study(plan, create=True)
    trial = study.ask()
    trial.suggest_float("optim.lr", 0.01, 0.5, log=True)
    trial.suggest_int("model.hidden.0", 8, 32, step=8)
    study._storage.record_heartbeat(trial._trial_id)
    time.sleep(3.5)  # three heartbeats of 1 s missed: stale
    res = tune(recipe, ["train.epochs=1"], space=space, trials=2, sampler="random",
               pruner="none", out=out, heartbeat=1, plots=False)  # fmt: skip
    states = [t["state"] for t in res.trials]
    assert states[0] == "FAIL" and states.count("COMPLETE") == 2 and "RUNNING" not in states
    retry = [t for t in res.trials if t["retry_of"] == 0]
    assert len(retry) == 1 and retry[0]["params"] == res.trials[0]["params"]


def test_study_with_another_space_is_refused(study_files):
    recipe, space, out = study_files
    args = dict(sampler="random", pruner="none", out=out, plots=False)
    tune(recipe, ["train.epochs=1"], space=space, trials=1, **args)
    space.write_text(SPACE.replace("high: 0.5", "high: 0.9"))
    with pytest.raises(Exception, match="another search space .*optim.lr.high"):
        tune(recipe, ["train.epochs=1"], space=space, trials=2, **args)


class _CtrlC(optuna.pruners.BasePruner):
    """Never prunes; presses Ctrl-C (SIGINT to this process) at the first epoch of trial 1."""

    def prune(self, study, trial) -> bool:
        if trial.number == 1 and trial.last_step == 1:
            os.kill(os.getpid(), signal.SIGINT)
        return False


def test_ctrl_c_stops_with_a_checkpoint_and_the_same_call_resumes(study_files):
    recipe, space, out = study_files
    args = dict(space=space, trials=3, sampler="random", out=out, plots=False)
    with pytest.raises(RunInterrupted, match="run the same command to resume"):
        tune(recipe, pruner=_CtrlC(), **args)
    stopped = out / "trials" / "1"
    assert (stopped / "checkpoints" / "latest").is_file()
    assert not (stopped / "summary.json").exists()  # not finished: continued by the next call
    res = tune(recipe, pruner="none", **args)
    states = [t["state"] for t in res.trials]
    assert states.count("COMPLETE") == 3 and states[1] == "FAIL"
    assert "interrupted" in res.trials[1]["reason"]
    [cont] = [t for t in res.trials if t["number"] > 1 and t["run_dir"] == str(out / "trials/1")]
    assert cont["state"] == "COMPLETE" and cont["params"] == res.trials[1]["params"]
    finished = json.loads((out / "trials" / "1" / "summary.json").read_text())
    assert finished["epochs"] == 3  # continued from the epoch-1 checkpoint to the end
