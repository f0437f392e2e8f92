"""``trainlab cv`` through the real entry point: a study, and every bad input as one line and
exit code 2 before any run starts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from trainlab.cli.main import main

IRIS = """
name: iris_cli
data: {name: iris, batch_size: 16}
model: {name: mlp, hidden: [8]}
optim: {name: adam, lr: 0.02}
train: {epochs: 1, threads: 1}
"""


def test_cv_command_writes_the_study(
    recipe, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "study"
    code = main(["cv", str(recipe(IRIS)), "--folds", "2", "--stratified", "--light",
                 "--out", str(out), "train.epochs=2"])  # fmt: skip
    assert code == 0
    stdout, err = capsys.readouterr()
    assert stdout.strip().splitlines()[-1] == f"cv: {out}"  # only the study, no per-fold lines
    assert "final val/acc" in err and "out-of-fold acc" in err
    index = json.loads((out / "cv.json").read_text())
    assert index["scheme"] == "stratified" and index["runs"] == ["fold_0_0", "fold_0_1"]
    assert sum(map(sum, index["oof"]["confusion"])) == index["pool_size"] == 120
    fold = json.loads((out / "fold_0_0" / "summary.json").read_text())
    assert fold["epochs"] == 2  # the override reached the fold runs


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--folds", "1"], "--folds: must be at least 2"),
        (["--folds", "121"], "folds: must be between 2 and the 120 samples"),
        (["--loo", "--folds", "3"], "--loo"),
        (["--loo", "--stratified"], "--loo"),
        (["--repeats", "0"], "--repeats"),
        (["--workers", "0"], "--workers"),
        (["train.epochz=1"], "train.epochz"),
        (["model.name=mlpp"], "did you mean 'mlp'"),
    ],
)
def test_bad_input_is_one_line_and_exit_2_before_any_run(
    recipe, tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "study"
    assert main(["cv", str(recipe(IRIS)), "--out", str(out), *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("trainlab: error:") and message in err[0]
    assert not out.exists()


def test_stratified_regression_is_exit_2(
    recipe, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:  # type: ignore[no-untyped-def]
    reg = recipe("data: {name: diabetes}\nmodel: {name: mlp}\ntask: {name: regression}\n")
    assert main(["cv", str(reg), "--stratified", "--out", str(tmp_path / "s")]) == 2
    assert "regression" in capsys.readouterr().err
    assert not (tmp_path / "s").exists()
