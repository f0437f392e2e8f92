"""The node_classification task through the one Trainer and whole runs: one step per epoch over
the whole graph, the loss and the metrics on the split's nodes, and one-line errors (exit 2) for
graph recipes with models or tasks that cannot use a graph."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from graph_files import write_graph

from trainlab.cli.main import main
from trainlab.errors import ConfigError
from trainlab.experiment import build_data
from trainlab.models import create_model
from trainlab.run import train_run
from trainlab.tasks.node_classification import NodeClassificationTask
from trainlab.train.trainer import Trainer

SBM = ("data: {name: sbm_graph, num_classes: 3, nodes_per_class: 30, p_in: 0.2, p_out: 0.02, "
       "num_features: 8, feature_noise: 1.0}\n")  # fmt: skip
TRAIN = ("train: {epochs: 4, log_every: 1, threads: 1, precision: fp32, tensorboard: false, "
         "report: false, norms: false}\n")  # fmt: skip


def _recipe(tmp_path: Path, model: str, data: str = SBM, task: str = "node_classification",
            name: str = "graph") -> Path:  # fmt: skip
    text = (f"name: {name}\nseed: 0\n{data}model: {model}\ntask: {{name: {task}}}\n"
            f"optim: {{name: adam, lr: 0.01}}\n{TRAIN}")  # fmt: skip
    path = tmp_path / f"{name}.yaml"
    path.write_text(text)
    return path


def test_one_step_per_epoch_and_metrics_on_the_split_nodes() -> None:
    torch.manual_seed(0)
    data = build_data("sbm_graph", num_classes=3, nodes_per_class=30, num_features=8)
    data.setup("cpu")
    model = create_model("gcn", in_features=8, num_classes=3)
    task = NodeClassificationTask()
    task.check_data(data)
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    trainer = Trainer(epochs=3, progress=False, log_every=1, precision="fp32", device="cpu")
    state = trainer.fit(model, task, data, opt)
    assert state.step == 3 and state.epoch == 3  # one optimizer step per epoch
    model.eval()
    with torch.no_grad():
        logits = model(data.graph.x, data.graph.edge_index)
    val = torch.as_tensor(data.split_indices["val"])
    acc = (logits[val].argmax(1) == data.graph.y[val]).float().mean().item()
    assert state.metrics["val/acc"] == pytest.approx(acc)
    assert len(state.metrics["val/confusion"]) == 3  # the classification metrics, K × K
    assert sum(map(sum, state.metrics["val/confusion"])) == len(val)


def test_loss_and_grads_come_from_the_training_nodes_only() -> None:
    data = build_data("karate_club")
    data.setup("cpu")
    model = create_model("gcn", in_features=34, num_classes=4, dropout=0.0)
    task = NodeClassificationTask()
    batch = next(data.loader("train").iter_epoch(0))
    out = task.train_step(model, batch)
    logits = model(data.graph.x, data.graph.edge_index)
    train = batch[0].index
    expected = torch.nn.functional.cross_entropy(logits[train], data.graph.y[train])
    assert out.loss.item() == pytest.approx(expected.item(), rel=1e-6)
    assert out.preds.shape == (14, 4) and torch.equal(out.target, batch[1])


def test_a_run_learns_and_writes_its_run_directory(tmp_path: Path) -> None:
    path = _recipe(tmp_path, "{name: gcn, hidden: 16}")
    summary = train_run(path, ["train.epochs=30"], run_dir=tmp_path / "run", progress=False)
    assert summary["epochs"] == 30 and summary["steps"] == 30
    assert summary["test"]["test/acc"] >= 0.8  # 3 well-separated blocks of 30 nodes
    losses = [h["train/loss_epoch"] for h in summary["history"]]
    assert losses[-1] < 0.5 * losses[0]
    info = json.loads((tmp_path / "run" / "data.json").read_text())
    assert info["sizes"] == {"train": 54, "val": 18, "test": 18}
    assert info["graph"]["nodes"] == 90
    test = json.loads((tmp_path / "run" / "eval_test.json").read_text())
    assert test["classes"] == ["block 0", "block 1", "block 2"] and "test/auroc" in test


def test_mlp_baseline_ignores_the_edges(tmp_path: Path) -> None:
    summary = train_run(_recipe(tmp_path, "{name: mlp, hidden: [16]}"), [],
                        run_dir=tmp_path / "run", progress=False)  # fmt: skip
    assert summary["steps"] == 4 and "test/acc" in summary["test"]


def test_graph_csv_recipe_is_reproduced_from_its_config(tmp_path: Path) -> None:
    nodes, edges = write_graph(tmp_path / "g", n_per_class=12, split=True)
    data = f"data: {{name: graph_csv, nodes: {nodes}, edges: {edges}}}\n"
    path = _recipe(tmp_path, "{name: graphsage, hidden: 8}", data=data)
    a = train_run(path, [], run_dir=tmp_path / "a", progress=False)
    b = train_run(tmp_path / "a" / "config.yaml", [], run_dir=tmp_path / "b", progress=False)
    assert a["test"] == b["test"]  # the saved config reproduces the run
    assert a["test"]["test/acc"] > 0.0


def _cli(path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> str:
    code = main(["train", str(path), *extra, "--run-dir", str(tmp_path / "run"), "--no-progress"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert not (tmp_path / "run").exists()  # nothing written before the error
    return err


def test_graph_recipe_with_an_image_model_is_one_line(tmp_path: Path, capsys) -> None:
    err = _cli(_recipe(tmp_path, "{name: lenet5}"), tmp_path, capsys)
    assert "model 'lenet5' cannot take a batch of data 'sbm_graph'" in err
    assert "graph data needs a graph model (gcn, graphsage, gat)" in err


def test_graph_recipe_with_the_classification_task_is_one_line(tmp_path: Path, capsys) -> None:
    err = _cli(_recipe(tmp_path, "{name: gcn}", task="classification"), tmp_path, capsys)
    assert "task.name=node_classification" in err


def test_node_classification_on_tabular_data_is_one_line(tmp_path: Path, capsys) -> None:
    err = _cli(_recipe(tmp_path, "{name: mlp}", data="data: {name: iris}\n"), tmp_path, capsys)
    assert "'node_classification' needs graph data" in err and "task.name=classification" in err


MISMATCHES = [
    ("model.num_classes=5", "model.num_classes=3"),
    ("model.num_classes=2", "model.num_classes=3"),
    ("model.in_features=3", "node features [90, 8]"),
]


@pytest.mark.parametrize(("override", "fix"), MISMATCHES)
def test_size_mismatches_are_one_line(tmp_path: Path, capsys, override: str, fix: str) -> None:
    model = "{name: mlp}" if "in_features" in override else "{name: gat}"
    err = _cli(_recipe(tmp_path, model), tmp_path, capsys, override)
    assert fix in err


def test_check_data_refuses_non_graph_data() -> None:
    data = build_data("iris")
    with pytest.raises(ConfigError, match="needs graph data"):
        NodeClassificationTask().check_data(data)


def test_report_model_summary_and_tensorboard_graph(tmp_path: Path) -> None:
    """The run's outputs work for graph models: torchinfo's table over the whole graph, the
    model graph in TensorBoard (traced with x and edge_index), the report, no warnings."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    path = _recipe(tmp_path, "{name: gcn}")
    train_run(path, ["train.epochs=2", "train.tensorboard=true", "train.report=true"],
              run_dir=tmp_path / "run", progress=False)  # fmt: skip
    run = tmp_path / "run"
    summary = (run / "model_summary.txt").read_text()
    assert "GCNConv" in summary and "[90, 3]" in summary  # logits of all 90 nodes
    assert json.loads((run / "warnings.json").read_text())["warnings"] == []
    assert (run / "report.html").is_file()
    events = EventAccumulator(str(run / "tb"))
    events.Reload()
    assert events.Tags()["graph"] is True


def test_resume_ends_with_the_same_weights(tmp_path: Path) -> None:
    """Stopped after 2 of 4 epochs and resumed: bit for bit the uninterrupted run (GAT's
    dropout included: the RNG state travels with the checkpoint)."""
    from safetensors.torch import load_file

    path = _recipe(tmp_path, "{name: gat, hidden: 4, heads: 2}")
    train_run(path, [], run_dir=tmp_path / "a", progress=False)
    train_run(path, ["train.max_steps=2"], run_dir=tmp_path / "b", progress=False)
    train_run(path, ["train.max_steps=null"], resume=tmp_path / "b", progress=False)
    a, b = (load_file(tmp_path / r / "checkpoints/step-00000004/model.safetensors") for r in "ab")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
