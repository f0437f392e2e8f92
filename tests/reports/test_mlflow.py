"""MLflow tracking (train.mlflow): read back with MLflow's own client from a real SQLite store."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import yaml
from reports_support import TINY

from trainlab.cli.main import main
from trainlab.config.load import parse_config
from trainlab.run import train_run
from trainlab.tracking.jsonl import read_metrics

CFG = {**TINY, "train": {**TINY["train"], "tensorboard": False, "report": True, "mlflow": True}}


@pytest.fixture(scope="module")
def mlflow_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object]:
    """One real run (1 epoch) logged to the default store; MLflow's client on that store."""
    pytest.importorskip("mlflow", reason="mlflow not installed (pip install 'trainlab[mlflow]')")
    from mlflow.tracking import MlflowClient

    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        run = tmp_path_factory.mktemp("mlf") / "runs" / "one"
        cfg = {**CFG, "train": {**CFG["train"], "epochs": 1}}
        train_run(parse_config(cfg), run_dir=run, progress=False)
    db = run.parent / "mlflow.db"  # the default store: beside the runs
    return run, MlflowClient(tracking_uri=f"sqlite:///{db}")


def test_params_metrics_and_artifacts(mlflow_run) -> None:
    run, client = mlflow_run
    exp = client.get_experiment_by_name("tiny")  # the recipe's name
    [mr] = client.search_runs([exp.experiment_id])
    assert mr.info.run_name == "one" and mr.info.status == "FINISHED"
    assert mr.data.params["optim.lr"] == "0.05"
    assert mr.data.params["model.hidden"] == "[16]"
    assert mr.data.params["train.mlflow"] == "true"
    want = [(r["step"], r["train/loss"]) for r in read_metrics(run / "metrics.jsonl")
            if "train/loss" in r]  # fmt: skip
    got = [(m.step, m.value) for m in client.get_metric_history(mr.info.run_id, "train/loss")]
    assert sorted(got) == want and len(want) == 3
    summary = json.loads((run / "summary.json").read_text())
    assert mr.data.metrics["test/acc"] == pytest.approx(summary["test"]["test/acc"])
    files = {f.path for f in client.list_artifacts(mr.info.run_id)}
    assert {"report.html", "curves.png", "config.yaml", "summary.json"} <= files
    assert (run.parent / "mlartifacts").is_dir()  # not ./mlruns in the working directory


def test_resume_continues_the_same_mlflow_run(mlflow_run, monkeypatch) -> None:
    run, client = mlflow_run
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    [before] = client.search_runs([client.get_experiment_by_name("tiny").experiment_id])
    train_run(None, ["train.epochs=2", "train.report=false"], resume=run, progress=False)
    [after] = client.search_runs([client.get_experiment_by_name("tiny").experiment_id])
    assert after.info.run_id == before.info.run_id and after.info.status == "FINISHED"
    steps = sorted(m.step for m in client.get_metric_history(after.info.run_id, "train/loss"))
    assert steps == [1, 2, 3, 4, 5, 6]


def test_missing_mlflow_is_one_line_before_any_run_dir(tmp_path: Path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "mlflow", None)  # import mlflow → ImportError
    recipe = tmp_path / "r.yaml"
    recipe.write_text(yaml.safe_dump(TINY))
    run = tmp_path / "run"
    code = main(["train", str(recipe), "train.mlflow=true", "--run-dir", str(run)])
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "pip install 'trainlab[mlflow]'" in err
    assert not run.exists()  # nothing was written
