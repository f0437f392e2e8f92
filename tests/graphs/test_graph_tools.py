"""The tools around a run on graph recipes: `trainlab data` summarises the split's nodes,
`trainlab doctor` checks the recipe, `trainlab analyze RECIPE` says in one line what to analyze
instead, and `trainlab eval` scores a finished run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from trainlab.cli.main import main
from trainlab.data.inspect import summarize
from trainlab.experiment import build_data

RECIPES = Path(__file__).resolve().parents[2] / "recipes"
FAST = ["train.epochs=3", "train.tensorboard=false", "train.report=false", "train.norms=false"]


def test_data_summary_counts_the_nodes_of_each_split() -> None:
    data = build_data("karate_club")
    data.setup("cpu")
    info = summarize(data)
    assert {k: v["n"] for k, v in info["splits"].items()} == {"train": 14, "val": 10, "test": 10}
    assert info["splits"]["train"]["x_shape"] == [34]
    assert all(v == 0 for v in info["duplicates"].values())  # one-hot identities: no leakage


def test_doctor_checks_a_graph_recipe(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["doctor", str(RECIPES / "gcn_karate.yaml"), *FAST])
    out = capsys.readouterr().out
    assert code == 0 and "0 problem(s)" in out


def test_analyze_recipe_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["analyze", str(RECIPES / "gcn_karate.yaml")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert "trainlab analyze gcn" in err and "--opt in_features=34" in err


def test_eval_scores_a_finished_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "run"
    assert main(["train", str(RECIPES / "gcn_karate.yaml"), *FAST, "--run-dir", str(run),
                 "--no-progress"]) == 0  # fmt: skip
    assert main(["eval", str(run), "--split", "val"]) == 0
    result = json.loads((run / "eval_val.json").read_text())
    assert 0.0 <= result["val/acc"] <= 1.0 and len(result["val/confusion"]) == 4


def test_ensemble_of_graph_runs_and_export_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for name, seed in (("a", 0), ("b", 1)):
        args = ["train", str(RECIPES / "gcn_karate.yaml"), *FAST, f"seed={seed}"]
        assert main([*args, "--run-dir", str(tmp_path / name), "--no-progress"]) == 0
    capsys.readouterr()
    runs = [str(tmp_path / "a"), str(tmp_path / "b")]
    assert main(["ensemble", *runs, "--out", str(tmp_path / "ens")]) == 0
    result = json.loads((tmp_path / "ens" / "ensemble.json").read_text())
    assert result["n_test"] == 10 and len(result["members"]) == 2  # the 10 test members
    assert "ensemble" in capsys.readouterr().out
    code = main(["export", runs[0], "--format", "torchscript", "--out", str(tmp_path / "m.pt")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "graph runs are not supported" in err
