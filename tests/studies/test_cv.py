"""Cross-validation: folds as scikit-learn draws them, one ordinary run per fold, figures over
folds, the out-of-fold confusion matrix, skipping finished folds, the test split left alone."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn import model_selection as ms

from trainlab.data.folds import FoldData, cv_fold, fold_splits
from trainlab.errors import ConfigError, DataError
from trainlab.run import train_run
from trainlab.studies.cv import cross_validate, plan_cv
from trainlab.studies.cv_runner import cpu_cores

IRIS = """
name: iris_cv
seed: 3
data: {name: iris, batch_size: 16}
model: {name: mlp, hidden: [16]}
optim: {name: adam, lr: 0.02}
train: {epochs: 2, threads: 1, log_every: 2}
"""


def _same(ours: list, theirs: object) -> None:
    theirs = list(theirs)  # type: ignore[call-overload]
    assert len(ours) == len(theirs)
    for (_, _, tr, va), (str_, sva) in zip(ours, theirs, strict=True):
        assert np.array_equal(tr, str_) and np.array_equal(va, sva)


def test_folds_are_scikit_learns_with_the_same_seed() -> None:
    y = np.array([0] * 12 + [1] * 9 + [2] * 6)
    x = np.zeros(len(y))
    _same(fold_splits(27, y, scheme="kfold", folds=4, seed=7),
          ms.KFold(4, shuffle=True, random_state=7).split(x))  # fmt: skip
    _same(fold_splits(27, y, scheme="stratified", folds=3, seed=7),
          ms.StratifiedKFold(3, shuffle=True, random_state=7).split(x, y))  # fmt: skip
    rep = fold_splits(27, y, scheme="stratified", folds=3, seed=1, repeats=2)
    _same(rep, ms.RepeatedStratifiedKFold(n_splits=3, n_repeats=2, random_state=1).split(x, y))
    assert [(r, k) for r, k, _, _ in rep] == [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (1, 2)]
    loo = fold_splits(27, None, scheme="loo", folds=0, seed=0)
    assert len(loo) == 27 and [va.tolist() for *_, va in loo] == [[i] for i in range(27)]
    # Another seed draws other folds.
    other = fold_splits(27, y, scheme="kfold", folds=4, seed=8)
    assert not np.array_equal(
        other[0][3], fold_splits(27, y, scheme="kfold", folds=4, seed=7)[0][3]
    )


def test_impossible_folds_are_named() -> None:
    y = np.array([0] * 10 + [1] * 2)
    with pytest.raises(ConfigError, match="folds: must be between 2 and the 12"):
        fold_splits(12, y, scheme="kfold", folds=13, seed=0)
    with pytest.raises(ConfigError, match="folds"):
        fold_splits(12, y, scheme="kfold", folds=1, seed=0)
    with pytest.raises(DataError, match="class 1 has 2 sample"):
        fold_splits(12, y, scheme="stratified", folds=3, seed=0)
    with pytest.raises(ConfigError, match="regression"):
        fold_splits(12, None, scheme="stratified", folds=3, seed=0)


def test_a_fold_is_part_of_the_training_pool_and_keeps_the_test_split() -> None:
    base = cv_fold(source={"name": "iris"}, scheme="stratified", folds=4, index=2, fold_seed=5)
    assert isinstance(base, FoldData)
    base.setup("cpu")
    from trainlab.data.base import DATA

    plain = DATA.get("iris")()
    plain.setup("cpu")
    rows = np.sort(np.concatenate([plain.split_indices["train"], plain.split_indices["val"]]))
    pool_y = np.concatenate([plain.splits["train"][1].numpy(), plain.splits["val"][1].numpy()])
    order = np.argsort(np.concatenate([plain.split_indices["train"], plain.split_indices["val"]]))
    labels = pool_y[order]
    _, _, tr, va = ms_fold = fold_splits(len(rows), labels, scheme="stratified", folds=4, seed=5)[2]
    assert ms_fold[:2] == (0, 2)
    assert np.array_equal(base.split_indices["val"], rows[va])
    assert np.array_equal(base.split_indices["train"], rows[tr])
    assert np.array_equal(base.split_indices["test"], plain.split_indices["test"])
    assert torch.equal(base.splits["test"][1], plain.splits["test"][1])
    assert base.sizes == {"train": len(tr), "val": len(va), "test": 30}
    # Normalisation statistics come from the fold's own training part.
    assert base.source.mean != plain.mean
    assert base.describe()["fold"]["index"] == 2


@pytest.fixture
def iris(recipe):  # type: ignore[no-untyped-def]
    return recipe(IRIS)


def _summary(folder: Path) -> dict:
    return json.loads((folder / "summary.json").read_text())


def test_kfold_study_aggregates_the_folds_and_skips_them_again(
    iris: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from trainlab.train.trainer import Trainer

    scored: list[str] = []
    evaluate = Trainer.evaluate

    def spy(self, model, task, loader, split, metrics):  # type: ignore[no-untyped-def]
        scored.append(split)
        return evaluate(self, model, task, loader, split, metrics)

    monkeypatch.setattr(Trainer, "evaluate", spy)
    out = tmp_path / "cv"
    res = cross_validate(iris, folds=3, stratified=True, out=out, light=True)
    assert sorted(res.trained) == ["fold_0_0", "fold_0_1", "fold_0_2"]
    finals = [_summary(out / f"fold_0_{k}")["final"] for k in range(3)]
    for key in ("val/acc", "val/loss"):
        s = res.metrics["final"][key]
        assert s.n == 3 and s.mean == pytest.approx(np.mean([f[key] for f in finals]), abs=1e-12)
        assert s.std == pytest.approx(np.std([f[key] for f in finals], ddof=1), abs=1e-12)
    # Every pool sample predicted once, by the model that did not train on it.
    conf = np.array(res.oof["confusion"])
    assert conf.sum() == 120 and conf.sum(axis=1).tolist() == [40, 40, 40]
    fold_acc = [np.trace(res.folds[k]["confusion"]) / 40 for k in range(3)]
    assert fold_acc == pytest.approx([f["val/acc"] for f in finals], abs=1e-6)
    # The test split is never scored (only the folds' held-out parts are).
    assert set(scored) == {"val"} and len(scored) == 3 * 2
    for k in range(3):
        assert "test" not in _summary(out / f"fold_0_{k}")
        assert not (out / f"fold_0_{k}" / "eval_test.json").exists()
    index = json.loads((out / "cv.json").read_text())
    assert index["metrics"]["final"]["val/acc"]["mean"] == res.metrics["final"]["val/acc"].mean
    assert (out / "cv.png").stat().st_size > 0 and "val/acc" in (out / "cv.md").read_text()
    # The same study again trains nothing; the figures are the same.
    stamp = (out / "fold_0_1" / "fold.json").stat().st_mtime_ns
    again = cross_validate(iris, folds=3, stratified=True, out=out, light=True)
    assert again.trained == [] and (out / "fold_0_1" / "fold.json").stat().st_mtime_ns == stamp
    assert again.metrics["final"]["val/acc"] == res.metrics["final"]["val/acc"]
    # A fold killed before it finished (no fold.json) is trained again, alone, to the same end.
    (out / "fold_0_2" / "fold.json").unlink()
    third = cross_validate(iris, folds=3, stratified=True, out=out, light=True)
    assert third.trained == ["fold_0_2"] and third.oof == res.oof
    # A fold's config.yaml trains that fold again: same held-out samples, same figures.
    rerun = train_run(out / "fold_0_1" / "config.yaml", run_dir=tmp_path / "again", progress=False)
    assert rerun["final"]["val/loss"] == finals[1]["val/loss"]
    # Another study in the same folder is refused before it runs anything.
    with pytest.raises(ConfigError, match="holds another cross-validation"):
        cross_validate(iris, ["optim.lr=0.05"], folds=3, stratified=True, out=out)


def test_leave_one_out_runs_light_in_this_process(recipe, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    small = recipe(IRIS.replace("batch_size: 16", "batch_size: 8, val_fraction: 0.1, "
                                "test_fraction: 0.8"), "small.yaml")  # fmt: skip
    res = cross_validate(small, ["train.epochs=1"], loo=True, out=tmp_path / "loo")
    assert res.plan["pool_size"] == 30 and len(res.folds) == 30
    assert all(f["sizes"] == {"train": 29, "val": 1, "test": 120} for f in res.folds)
    fold = tmp_path / "loo" / "fold_0_17"
    assert (fold / "fold.json").is_file() and (fold / "metrics.jsonl").is_file()
    for heavy in ("checkpoints", "tb", "report.html", "norms.jsonl"):
        assert not (fold / heavy).exists()
    # Each sample is one fold's whole validation split: the out-of-fold accuracy is the mean.
    assert res.oof["n"] == 30
    assert res.oof["acc"] == pytest.approx(res.metrics["final"]["val/acc"].mean, abs=1e-9)


def test_regression_folds_refuse_stratification(recipe, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    reg = recipe("data: {name: diabetes}\nmodel: {name: mlp, hidden: [8]}\n"
                 "task: {name: regression}\ntrain: {epochs: 1, monitor: val/loss, "
                 "monitor_mode: min}\n", "reg.yaml")  # fmt: skip
    with pytest.raises(ConfigError, match="stratified"):
        plan_cv(reg, folds=3, stratified=True, out=tmp_path / "x")
    assert not (tmp_path / "x").exists()
    plan = plan_cv(reg, folds=4, workers=2, out=tmp_path / "x")
    assert len(plan.jobs) == 4 and plan.threads == max(1, cpu_cores() // plan.workers)
    assert plan.workers == min(2, cpu_cores())
    many = plan_cv(reg, folds=4, workers=4 * cpu_cores(), out=tmp_path / "x")
    assert many.workers * many.threads <= cpu_cores()  # never more threads than cores
    assert plan.jobs[0].config["train"]["eval_test"] is False


def test_repeated_folds_then_refit_on_the_whole_pool(iris: Path, tmp_path: Path) -> None:
    quick = ["train.epochs=1", "train.report=false", "train.tensorboard=false", "train.norms=false"]
    res = cross_validate(iris, quick, folds=2, repeats=2, refit=True, light=True,
                         out=tmp_path / "r")  # fmt: skip
    assert [f["fold"] for f in res.folds] == ["fold_0_0", "fold_0_1", "fold_1_0", "fold_1_1"]
    assert res.oof["n"] == 2 * 120  # every sample held out once per repeat
    assert res.metrics["final"]["val/acc"].n == 4
    # The refit is an ordinary run on all 120 pool samples, and the one that meets the test split.
    data = json.loads((tmp_path / "r" / "refit" / "data.json").read_text())
    assert data["sizes"] == {"train": 120, "val": 0, "test": 30}
    assert "test/acc" in res.refit["test"]
    assert (
        json.loads((tmp_path / "r" / "cv.json").read_text())["refit"]["test"] == res.refit["test"]
    )


PLUGIN = """
from trainlab.models import register_model
from trainlab.models.mlp import MLP


@register_model("cv_plugin_mlp")
def cv_plugin_mlp(*, in_features: int = 4, num_classes: int = 3):
    return MLP(in_features, [12], num_classes, "relu", "none", 0.0)
"""


@pytest.mark.slow
def test_workers_give_the_same_folds_as_one_process(recipe, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from trainlab.plugins import import_plugin

    (tmp_path / "cv_plugin.py").write_text(PLUGIN)
    import_plugin(str(tmp_path / "cv_plugin.py"))  # the workers must register it too
    iris = recipe(IRIS.replace("name: mlp, hidden: [16]", "name: cv_plugin_mlp"))
    one = cross_validate(iris, folds=3, out=tmp_path / "one", light=True)
    two = cross_validate(iris, folds=3, out=tmp_path / "two", light=True, workers=2)
    assert two.plan and two.folds and len(two.folds) == 3
    by_fold = {f["fold"]: f["final"] for f in one.folds}
    assert {f["fold"]: f["final"] for f in two.folds} == by_fold


def test_an_interrupted_study_says_the_same_command_continues(
    iris: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from trainlab.errors import RunInterrupted
    from trainlab.studies import cv

    def stop(*_: object, **__: object) -> None:
        raise RunInterrupted("stopped by SIGINT after step 3; continue with: trainlab train …", 2)

    monkeypatch.setattr(cv, "run_folds", stop)
    with pytest.raises(RunInterrupted, match="the same command continues") as err:
        cross_validate(iris, folds=2, out=tmp_path / "i")
    assert err.value.exit_code == 130 and "train --resume" not in str(err.value)
