"""train.swa: stochastic weight averaging as a callback of the one loop."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from torch import nn

from core_support import SYNTH
from trainlab.callbacks.swa import SWA, start_epoch
from trainlab.cli.main import main
from trainlab.errors import ConfigError
from trainlab.experiment import build_data
from trainlab.train.checkpoint import resolve_checkpoint
from trainlab.train.trainer import Trainer


class Snapshots:
    """Weights after each epoch's last step (listed before SWA: the raw weights), and the
    learning rate set for the next step (read by a second instance listed after SWA)."""

    def __init__(self) -> None:
        self.weights: list[dict[str, torch.Tensor]] = []
        self.lrs: list[list[float]] = []

    def on_epoch_start(self, state) -> None:
        self.lrs.append([])

    def on_batch_end(self, state) -> None:
        self.lrs[-1].append(state.lr)
        if state.batch == state.steps_per_epoch:
            self.weights.append({k: v.detach().clone()
                                 for k, v in state.model.named_parameters()})  # fmt: skip


def tiny_fit(swa: SWA, epochs: int = 4, schedule: bool = False):
    torch.manual_seed(0)
    data = build_data("synthetic", num_classes=3, shape=[1, 4, 4], n_train=128, n_val=32,
                      n_test=32, batch_size=32, noise=2.0)  # fmt: skip
    data.setup(torch.device("cpu"))
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 8), nn.BatchNorm1d(8), nn.ReLU(),
                          nn.Linear(8, 3))  # fmt: skip
    opt = torch.optim.SGD(model.parameters(), lr=0.2, momentum=0.9)
    sched = None
    if schedule:  # a step schedule that SWA must override: ×0.5 after every step
        from types import SimpleNamespace

        sched = SimpleNamespace(interval="step", monitor=None,
                                scheduler=torch.optim.lr_scheduler.ExponentialLR(opt, 0.5))
    snaps, after = Snapshots(), Snapshots()
    trainer = Trainer(epochs=epochs, device="cpu", precision="fp32", progress=False,
                      callbacks=[snaps, swa, after])  # fmt: skip
    state = trainer.fit(model, task_for(), data, opt, sched)
    snaps.lrs = after.lrs
    return model, data, snaps, state


def task_for():
    from trainlab.tasks.classification import ClassificationTask

    return ClassificationTask()


def test_averaged_weights_are_the_mean_of_epoch_snapshots_and_bn_is_recomputed() -> None:
    model, data, snaps, state = tiny_fit(SWA(start=1, lr=0.05, anneal_epochs=0))
    assert len(snaps.weights) == 4
    for name, p in model.named_parameters():  # epochs 2, 3, 4 averaged (start=1)
        mean = torch.stack([w[name] for w in snaps.weights[1:]]).mean(0)
        torch.testing.assert_close(p.detach(), mean, rtol=0, atol=1e-6)
    last = snaps.weights[-1]  # not the last weights (a bias before BN gets no gradient)
    assert not torch.allclose(model[4].weight.detach(), last["4.weight"])
    # BN statistics recomputed for the averaged weights over one pass of the training batches
    # (4 equal batches: the cumulative mean is the mean over all training inputs).
    bn = model[2]
    with torch.no_grad():
        x = torch.cat([x for x, _ in data.loader("train").iter_epoch(0)])
        h = model[1](model[0](x))
    torch.testing.assert_close(bn.running_mean, h.mean(0), rtol=0, atol=1e-5)
    assert int(bn.num_batches_tracked) == 4
    assert state.take_as_best  # no checkpointer here to consume the flag


def test_swa_lr_overrides_the_recipe_schedule() -> None:
    _, _, snaps, _ = tiny_fit(SWA(start=2, lr=0.05, anneal_epochs=1), schedule=True)
    before = [lr for epoch in snaps.lrs[:2] for lr in epoch]
    assert before == pytest.approx([0.2 * 0.5 ** (i + 1) for i in range(8)])
    # Epoch 3 anneals (cosine, over its 4 steps) from the rate at start towards 0.05 …
    assert snaps.lrs[2][-1] == pytest.approx(0.05) and before[-1] < snaps.lrs[2][0] < 0.05
    assert snaps.lrs[3] == pytest.approx([0.05] * 4)  # … then holds it: the ×0.5 is overridden


def test_start_resolution_and_mistakes() -> None:
    assert start_epoch(0.75, 8) == 6 and start_epoch(2, 8) == 2 and start_epoch(0, 3) == 0
    with pytest.raises(ConfigError, match="no epoch left"):
        start_epoch(4, 4)
    with pytest.raises(ConfigError, match="neither a fraction"):
        start_epoch(2.5, 8)


BN_SYNTH = SYNTH.replace(
    "model: {name: mlp, hidden: [32]}", "model: {name: mlp, hidden: [32], norm: batch}"
) + "sched: {name: cosine}\n"


def train(recipe: Path, run: Path, *overrides: str) -> dict:
    code = main(["train", str(recipe), *overrides, "--run-dir", str(run), "--no-progress"])
    assert code == 0
    return json.loads((run / "summary.json").read_text())


def weights(run: Path, which: str = "latest") -> dict[str, torch.Tensor]:
    return load_file(str(resolve_checkpoint(run, which) / "model.safetensors"))


@pytest.mark.parametrize("stop_at", [9, 20])  # 6 steps per epoch: mid-epoch, before/in SWA
def test_swa_run_resumes_exactly_and_its_result_is_best(recipe, tmp_path, stop_at) -> None:
    path = recipe(BN_SYNTH)
    swa = ["train.epochs=5", "train.swa={start: 2, lr: 0.02}"]
    full = train(path, tmp_path / "full", *swa)
    assert full["best"]["epoch"] == 5  # the averaged weights are the run's result
    part = tmp_path / "part"
    train(path, part, *swa, f"train.max_steps={stop_at}")
    assert main(["train", "--resume", str(part), "train.max_steps=null", "--no-progress"]) == 0
    a, b = weights(tmp_path / "full"), weights(part)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert json.loads((part / "summary.json").read_text())["test"] == full["test"]
    assert resolve_checkpoint(part, "best") == resolve_checkpoint(part, "latest")

def test_swa_with_ema_or_late_start_is_one_line(recipe, tmp_path, capsys) -> None:
    path = recipe(BN_SYNTH)
    args = ["train", str(path), "--run-dir", str(tmp_path / "r"), "--no-progress"]
    assert main([*args, "train.swa=true", "train.ema_decay=0.9"]) == 2
    assert "choose one" in capsys.readouterr().err
    assert main([*args, "train.swa={start: 2}"]) == 2  # 2 epochs: nothing left to average
    assert "train.swa.start" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()
