"""TensorBoard events read back with TensorBoard's own reader."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from reports_support import HIST_EVERY, TINY
from safetensors.torch import load_file
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from torch import nn

from trainlab.tracking.jsonl import read_metrics
from trainlab.tracking.tensorboard import TensorBoardLogger
from trainlab.train.checkpoint import resolve_checkpoint
from trainlab.train.state import TrainState


def load_events(log_dir: Path) -> EventAccumulator:
    acc = EventAccumulator(str(log_dir), size_guidance={"scalars": 0, "histograms": 0, "images": 0})
    return acc.Reload()


def test_scalars_equal_metrics_jsonl(tiny_run: Path) -> None:
    acc = load_events(tiny_run / "tb")
    expected: dict[str, list[tuple[int, float]]] = {}
    for r in read_metrics(tiny_run / "metrics.jsonl"):
        for k, v in r.items():
            if k not in ("step", "epoch") and isinstance(v, (int, float)):
                expected.setdefault(k, []).append((r["step"], float(np.float32(v))))
    assert {"train/loss", "val/acc", "val/loss", "lr"} <= expected.keys()
    assert set(acc.Tags()["scalars"]) == expected.keys()  # lists (confusion) are not scalars
    for tag, points in expected.items():
        got = [(e.step, e.value) for e in acc.Scalars(tag)]
        assert got == points, tag  # TensorBoard stores float32: equal after that rounding


def test_histograms_graph_and_images(tiny_run: Path) -> None:
    acc = load_events(tiny_run / "tb")
    tags = acc.Tags()
    weights = load_file(str(resolve_checkpoint(tiny_run, "latest") / "model.safetensors"))
    steps = 2 * (TINY["data"]["n_train"] // TINY["data"]["batch_size"])
    for name, w in weights.items():
        hist = acc.Histograms(f"weights/{name}")
        assert [h.step for h in hist] == [0, *range(HIST_EVERY, steps + 1, HIST_EVERY)]
        last = hist[-1].histogram_value  # after the last step: the saved final weights
        assert last.num == w.numel()
        assert last.min == pytest.approx(float(w.min())) and last.max == pytest.approx(
            float(w.max())
        )
        assert last.sum == pytest.approx(float(w.sum()), abs=1e-4)
        grads = acc.Histograms(f"grads/{name}")
        assert [h.step for h in grads] == list(range(HIST_EVERY, steps + 1, HIST_EVERY))
        assert grads[-1].histogram_value.max > grads[-1].histogram_value.min  # real gradients
    assert tags["graph"] is True
    [image] = acc.Images("inputs/first_batch")
    assert image.step == 1 and image.width > 6 and image.height > 6


def _fit(cfg: dict, callbacks: list) -> dict[str, torch.Tensor]:
    from trainlab.config.load import parse_config
    from trainlab.experiment import build_experiment

    exp = build_experiment(parse_config(cfg), callbacks=callbacks)
    exp.trainer.fit(exp.model, exp.task, exp.data, exp.optimizer, exp.schedule)
    return exp.model.state_dict()


def test_logger_leaves_training_unchanged(tmp_path: Path) -> None:
    # Dropout draws random numbers and batch norm updates statistics in train mode: a graph
    # trace or histogram that touched either would change the final weights.
    cfg = {
        **TINY,
        "model": {"name": "mlp", "hidden": [16], "norm": "batch", "dropout": 0.3},
        "train": {**TINY["train"], "epochs": 1},
    }
    plain = _fit(cfg, [])
    logged = _fit(cfg, [TensorBoardLogger(tmp_path / "tb", hist_every=1)])
    assert plain.keys() == logged.keys()
    for k in plain:
        assert torch.equal(plain[k], logged[k]), k
    assert load_events(tmp_path / "tb").Tags()["graph"] is True


class DictNet(nn.Module):
    """Returns a dict: strict tracing refuses it, so the graph must be skipped."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"logits": self.fc(x)}


def test_untraceable_model_skips_graph_with_warning(tmp_path: Path) -> None:
    model = DictNet()
    state = TrainState(model=model, optimizer=torch.optim.SGD(model.parameters(), lr=0.1))
    tb = TensorBoardLogger(tmp_path, hist_every=1)
    tb.on_fit_start(state)
    model(torch.randn(3, 4))["logits"].sum().backward()  # the hook sees the first batch
    expected = model.fc.weight.grad.clone()
    model.zero_grad(set_to_none=True)  # as the loop does right after optimizer.step()
    state.step = 1
    with pytest.warns(UserWarning, match="graph skipped"):
        tb.on_batch_end(state)
    tb.on_log(state, {"step": 1, "epoch": 0, "train/loss": 0.5, "flag": True, "cm": [[1]]})
    tb.on_fit_end(state)
    acc = load_events(tmp_path)
    assert acc.Tags()["graph"] is False
    assert acc.Tags()["scalars"] == ["train/loss"]  # bools and lists are not scalars
    assert acc.Tags()["images"] == []  # (3, 4) inputs are not images
    [grad] = acc.Histograms("grads/fc.weight")  # kept although the loop freed .grad
    assert grad.histogram_value.sum == pytest.approx(float(expected.sum()), abs=1e-5)
    assert grad.histogram_value.max == pytest.approx(float(expected.max()))


def test_resume_continues_the_curves(tmp_path: Path) -> None:
    from torch.utils.tensorboard import SummaryWriter

    from trainlab.config.load import parse_config
    from trainlab.run import train_run

    run = tmp_path / "run"
    # 3 steps, checkpoint at step 3; the recipe's own TensorBoard logger writes tb/.
    cfg = {**TINY, "train": {**TINY["train"], "epochs": 1, "hist_every": 100}}
    train_run(parse_config(cfg), run_dir=run, progress=False)
    with SummaryWriter(str(run / "tb")) as w:  # what a crash after that checkpoint leaves
        w.add_scalar("train/loss", 99.0, 4)
        w.add_scalar("train/loss", 99.0, 5)
    train_run(None, ["train.epochs=2"], resume=run, progress=False)
    want = [
        (r["step"], float(np.float32(r["train/loss"])))
        for r in read_metrics(run / "metrics.jsonl")
        if "train/loss" in r
    ]
    got = [(e.step, e.value) for e in load_events(run / "tb").Scalars("train/loss")]
    assert got == want  # steps 1-6 once each: the stale 99s are purged, step 3 is kept


@pytest.mark.parametrize("snapshot", [True, False])
def test_weights_before_training_and_the_first_records(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, snapshot: bool
) -> None:
    """The event file opens after the first step (training starts without the tensorboard
    import), yet the step-0 histograms show the weights before that step (copied, or written at
    once for models over SNAPSHOT_MAX parameters) and the first step's records are there."""
    from trainlab.config.load import parse_config
    from trainlab.experiment import build_experiment
    from trainlab.tracking import tensorboard

    if not snapshot:
        monkeypatch.setattr(tensorboard, "SNAPSHOT_MAX", 0)
    cfg = {**TINY, "train": {**TINY["train"], "epochs": 1, "log_every": 1}}
    logger = TensorBoardLogger(tmp_path / "tb", hist_every=50, graph=False, images=0)
    exp = build_experiment(parse_config(cfg), callbacks=[logger])
    before = {k: v.detach().clone() for k, v in exp.model.named_parameters()}
    exp.trainer.fit(exp.model, exp.task, exp.data, exp.optimizer, exp.schedule)
    acc = load_events(tmp_path / "tb")
    for name, w in before.items():
        assert not torch.equal(w, dict(exp.model.named_parameters())[name])  # it did train
        [h] = acc.Histograms(f"weights/{name}")
        assert h.step == 0 and h.histogram_value.num == w.numel()
        assert h.histogram_value.sum == pytest.approx(float(w.sum()), abs=1e-4)
        assert h.histogram_value.max == pytest.approx(float(w.max()))
    steps = [e.step for e in acc.Scalars("train/loss")]
    assert steps[0] == 1 and steps == sorted(set(steps))


def test_a_fit_without_steps_still_writes_its_event_file(tmp_path: Path) -> None:
    model = nn.Linear(3, 2)
    logger = TensorBoardLogger(tmp_path / "tb", graph=False, images=0)
    state = TrainState(model=model, optimizer=torch.optim.SGD(model.parameters(), lr=0.1))
    logger.on_fit_start(state)
    logger.on_log(state, {"step": 0, "epoch": 0, "note/value": 3.0})
    assert not (tmp_path / "tb").exists()  # nothing yet: the writer waits for a step
    logger.on_fit_end(state)
    acc = load_events(tmp_path / "tb")
    assert [e.value for e in acc.Scalars("note/value")] == [3.0]
    assert {f"weights/{n}" for n, _ in model.named_parameters()} <= set(acc.Tags()["histograms"])
