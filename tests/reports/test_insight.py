"""What a real run leaves for insight: weight/gradient norms, top losses, interpretation.

Each figure is checked against an independent computation: the norms against the saved weights
and TensorBoard's gradient histograms, the top losses against a fresh pass over the test set.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
import yaml
from reports_support import HIST_EVERY, TINY
from safetensors.numpy import load_file as load_numpy
from safetensors.torch import load_file
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from trainlab.reports import ReportError, interpret
from trainlab.reports.insight import read_norms
from trainlab.train.checkpoint import load_checkpoint, resolve_checkpoint

STEPS = 2 * (TINY["data"]["n_train"] // TINY["data"]["batch_size"])  # 6


def test_norms_match_weights_and_tensorboard(tiny_run: Path) -> None:
    records = read_norms(tiny_run)
    assert [r["step"] for r in records] == [0, *range(HIST_EVERY, STEPS + 1, HIST_EVERY)]
    assert records[0]["grad"] == {}  # before training: no gradient yet
    weights = load_file(str(resolve_checkpoint(tiny_run, "latest") / "model.safetensors"))
    layers = {name.rpartition(".")[0] for name in weights}
    last = records[-1]  # after the last step: the saved final weights
    assert set(last["weight"]) == set(last["grad"]) == layers
    for layer in layers:
        own = [w for n, w in weights.items() if n.rpartition(".")[0] == layer]
        want = math.sqrt(sum(float(w.double().square().sum()) for w in own))
        assert last["weight"][layer] == pytest.approx(want, rel=1e-5)
    # TensorBoard's gradient histograms carry the sum of squares: the same gradients.
    acc = EventAccumulator(str(tiny_run / "tb"), size_guidance={"histograms": 0}).Reload()
    for r in records[1:]:
        for layer, norm in r["grad"].items():
            tags = [f"grads/{n}" for n in weights if n.rpartition(".")[0] == layer]
            hists = [h for t in tags for h in acc.Histograms(t) if h.step == r["step"]]
            sq = sum(h.histogram_value.sum_squares for h in hists)
            assert len(hists) == 2 and norm > 0  # weight and bias
            assert norm == pytest.approx(math.sqrt(sq), rel=1e-4), (r["step"], layer)


def _recomputed_losses(run: Path) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-example test losses of the best checkpoint, and the test inputs, in split order."""
    from trainlab.config.load import parse_config
    from trainlab.experiment import build_experiment

    exp = build_experiment(parse_config(yaml.safe_load((run / "config.yaml").read_text())))
    load_checkpoint(resolve_checkpoint(run, "best"), exp.model, prefer_ema=True)
    exp.model.eval()
    xs, losses = [], []
    with torch.no_grad():
        for x, y in exp.data.loader("test").iter_epoch(0):
            losses.append(F.cross_entropy(exp.model(x), y, reduction="none"))
            xs.append(x)
    return torch.cat(losses), torch.cat(xs)


def test_top_losses_are_the_highest_losses(tiny_run: Path) -> None:
    top = json.loads((tiny_run / "top_losses_test.json").read_text())
    rows = top["rows"]
    assert top["kind"] == "classification" and top["evaluated"] == TINY["data"]["n_test"]
    assert len(rows) == 16
    losses, xs = _recomputed_losses(tiny_run)
    want = losses.topk(16)
    assert [r["loss"] for r in rows] == pytest.approx(want.values.tolist(), rel=1e-5)
    assert {r["index"] for r in rows} == set(want.indices.tolist())  # ties could reorder
    for r in rows:
        assert r["loss"] == pytest.approx(-math.log(r["p_true"]), rel=1e-4)
        assert r["confidence"] >= r["p_true"]
    images = load_numpy(str(tiny_run / "top_losses_test.safetensors"))["inputs"]
    assert images.shape == (16, 1, 6, 6)
    for r, img in zip(rows, images):
        assert torch.equal(torch.from_numpy(img), xs[r["index"]])  # the example itself


def test_interpret_reads_the_run(tiny_run: Path, tmp_path: Path) -> None:
    interp = interpret(tiny_run)
    cm = json.loads((tiny_run / "eval_test.json").read_text())["test/confusion"]
    pairs = interp.most_confused()
    mistakes = sum(cm[i][j] for i in range(3) for j in range(3) if i != j)
    assert sum(n for _, _, n in pairs) == mistakes
    assert [n for _, _, n in pairs] == sorted((n for _, _, n in pairs), reverse=True)
    true, pred, n = pairs[0]
    assert cm[int(true)][int(pred)] == n
    assert interp.most_confused(min_val=n) == [p for p in pairs if p[2] >= n]
    assert (
        interp.top_losses(3)
        == json.loads((tiny_run / "top_losses_test.json").read_text())["rows"][:3]
    )
    png = interp.plot_top_losses(tmp_path / "worst.png", k=4)
    assert png.stat().st_size > 1000
    with pytest.raises(ReportError, match="trainlab eval .* --split val"):
        interpret(tiny_run, split="val")


def test_model_summary_is_torchinfo(tiny_run: Path) -> None:
    text = (tiny_run / "model_summary.txt").read_text()
    assert "Linear (1)" in text and "Total params: 643" in text


def test_model_summary_falls_back_to_parameter_counts() -> None:
    from torch import nn

    from trainlab.tracking.model_summary import model_summary

    class TakesTwo(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.body, self.head = nn.Linear(4, 8), nn.Linear(8, 2)

        def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
            return self.head(self.body(x) * mask)

    text = model_summary(TakesTwo(), (torch.randn(2, 4),))  # forward needs a second input
    assert text.startswith("(torchinfo could not run the model: ")
    lines = text.splitlines()
    assert lines[-3].split() == ["body", "Linear", "40", "40"]
    assert lines[-1].split() == ["total", "58", "58"]
