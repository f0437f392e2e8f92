"""What a run says about itself: peak memory in summary.json, a loud warning when the training
loss explodes, the first non-finite step, per-epoch lines under --no-progress."""

from __future__ import annotations

import json

import torch
from torch import nn

from core_support import SYNTH
from trainlab import Trainer, build_data
from trainlab.cli.main import main
from trainlab.tasks.classification import ClassificationTask
from trainlab.tracking.run_health import loss_warnings, peak_memory


def test_summary_records_peak_memory_and_epoch_lines_survive_no_progress(
    recipe, tmp_path, capsys
) -> None:
    run = tmp_path / "run"
    assert main(["train", str(recipe(SYNTH)), "--run-dir", str(run), "--no-progress"]) == 0
    summary = json.loads((run / "summary.json").read_text())
    assert summary["memory"]["peak_rss_mib"] > 50  # torch alone is more than that
    assert "warnings" not in summary  # a healthy run has none
    err = capsys.readouterr().err
    assert "epoch 1/2" in err and "epoch 2/2" in err  # the lines, without the bar


def test_exploding_loss_warns_loudly_and_is_kept_in_the_summary(recipe, tmp_path, capsys) -> None:
    run = tmp_path / "run"
    # lr 8 on an MLP without normalisation: the loss grows to thousands, yet stays finite
    args = ["train", str(recipe(SYNTH)), "--run-dir", str(run), "--no-progress",
            "optim.lr=8.0", "optim.momentum=0.9", "train.epochs=3"]  # fmt: skip
    assert main(args) == 0
    summary = json.loads((run / "summary.json").read_text())
    assert summary["warnings"] and summary["warnings"][0].startswith("training loss exploded")
    assert "warning: training loss exploded" in " ".join(capsys.readouterr().err.split())


def test_loss_warnings_rules() -> None:
    healthy = [{"epoch": e, "train/loss_epoch": 2.3 / e, "val/acc": 0.5} for e in (1, 2, 3)]
    assert loss_warnings(healthy, 10) == []
    # the user's run: 359,816 at chance accuracy
    blown = [{"epoch": 1, "train/loss_epoch": 2.2}, {"epoch": 2, "train/loss_epoch": 359_816.0,
                                                     "val/acc": 0.1}]  # fmt: skip
    (msg,) = loss_warnings(blown, 10)
    assert "359,816" in msg and "uniform guess" in msg and "chance 0.1000" in msg
    # a regression loss (no classes) that rose 20× from its best
    rose = [{"epoch": 1, "train/loss_epoch": 1.0}, {"epoch": 2, "train/loss_epoch": 20.0}]
    assert "20× its lowest" in loss_warnings(rose, None)[0]
    assert loss_warnings([{"epoch": 1, "train/loss_epoch": float("nan")}], 10) == []
    # measured: LeNet without BN at lr 4 — 70.95 in epoch 1, then a constant guess (2.309)
    dead = [{"epoch": 1, "train/loss_epoch": 70.9543, "val/acc": 0.1},
            {"epoch": 2, "train/loss_epoch": 2.3094, "val/acc": 0.1}]  # fmt: skip
    (msg,) = loss_warnings(dead, 10)
    assert "exploded to 70.954 in epoch 1" in msg and "ended at chance accuracy" in msg
    # the same curve ending well above chance is a recovery, not a failure
    dead[-1]["val/acc"] = 0.6
    assert loss_warnings(dead, 10) == []
    # measured: classic LeNet with var_only BN at lr 0.9 — 7.49, 7.71, at chance
    worse = [{"epoch": 1, "train/loss_epoch": 7.494, "val/acc": 0.1},
             {"epoch": 2, "train/loss_epoch": 7.7135, "val/acc": 0.1}]  # fmt: skip
    assert (
        "with a training loss of 7.713, above a uniform guess's (2.30)"
        in (loss_warnings(worse, 10)[0])
    )
    # measured: the classic LeNet under the modern recipe — a constant guess all along
    flat = [{"epoch": e, "train/loss_epoch": 2.304, "val/acc": 0.1} for e in (1, 2, 3)]
    assert "did not learn" in loss_warnings(flat, 10)[0]
    assert loss_warnings([{"epoch": 1, "train/loss_epoch": 2.304, "val/acc": 0.13}], 10)
    assert loss_warnings([{"epoch": 1, "train/loss_epoch": 2.304, "val/acc": 0.16}], 10) == []


def test_peak_memory_on_cpu_has_no_cuda_figures() -> None:
    mem = peak_memory("cpu")
    assert set(mem) == {"peak_rss_mib"} and mem["peak_rss_mib"] > 0


class NaNAfter(nn.Module):
    """A linear classifier whose training forward returns NaN from its ``bad``-th call on."""

    def __init__(self, bad: int) -> None:
        super().__init__()
        self.fc, self.calls, self.bad = nn.Linear(10, 3), 0, bad

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            self.calls += 1
            if self.calls >= self.bad:
                return self.fc(x) * float("nan")
        return self.fc(x)


def _nan_run(bad: int, accumulate: int) -> str:
    data = build_data("synthetic", num_classes=3, shape=[10], n_train=256, n_val=32, n_test=0,
                      batch_size=16)  # fmt: skip
    data.setup("cpu")
    model = NaNAfter(bad)
    trainer = Trainer(epochs=1, device="cpu", precision="fp32", log_every=10, progress=False,
                      accumulate=accumulate)  # fmt: skip
    state = trainer.fit(model, ClassificationTask(), data, torch.optim.SGD(model.parameters(), 0.1))
    assert state.diverged
    return state.stop_reason


def test_nan_stop_names_the_first_bad_step_not_the_window() -> None:
    # batch 7 is bad; the check runs at step 10 (log_every) and names step 7, not "steps 1-10"
    assert _nan_run(bad=7, accumulate=1).startswith("non-finite loss in step 7 (first")
    # two micro-batches per step: batch 7 belongs to step 4
    assert _nan_run(bad=7, accumulate=2).startswith("non-finite loss in step 4 (first")


def test_env_records_the_commit_of_trainlab_from_another_folder(tmp_path, monkeypatch) -> None:
    import subprocess
    from pathlib import Path

    import pytest

    import trainlab
    from trainlab.tracking.rundir import env_info

    source = Path(trainlab.__file__).resolve().parent
    head = subprocess.run(["git", "-C", str(source), "rev-parse", "HEAD"], capture_output=True,
                          text=True)  # fmt: skip
    if head.returncode != 0:
        pytest.skip("trainlab is not running from a git checkout")
    monkeypatch.chdir(tmp_path)  # not a repository
    assert env_info(torch.device("cpu"), "fp32", False)["git_commit"] == head.stdout.strip()


def test_loss_rules_follow_the_task() -> None:
    """The chance-level rules are for classification; games and RL have no loss rules; a VAE's
    NELBO of ~100 nats on 10-class data is not an 'explosion' (it is not a cross-entropy)."""
    from trainlab.tasks.autoencoding import AutoencoderTask
    from trainlab.tasks.rl_common import EnvironmentTask
    from trainlab.tasks.side_optimizer import DiscriminatorTask
    from trainlab.tracking.run_health import task_loss_warnings

    nelbo = [{"epoch": e, "train/loss_epoch": v} for e, v in ((1, 160.2), (2, 118.7), (3, 104.9))]
    assert loss_warnings(nelbo, 10)  # the bare rules, given K = 10, misread it
    assert task_loss_warnings(AutoencoderTask(), nelbo, 10) == []
    rising = [{"epoch": 1, "train/loss_epoch": 0.02}, {"epoch": 2, "train/loss_epoch": 0.9}]
    for task in (EnvironmentTask(), DiscriminatorTask()):
        assert task_loss_warnings(task, rising, 2) == []
    assert task_loss_warnings(AutoencoderTask(), rising, None)  # 45× its lowest: still flagged
    exploded = [{"epoch": 1, "train/loss_epoch": 2.1},
                {"epoch": 2, "train/loss_epoch": 359816.0, "val/acc": 0.1}]  # fmt: skip
    assert task_loss_warnings(ClassificationTask(), exploded, 10) == loss_warnings(exploded, 10)
    assert task_loss_warnings(ClassificationTask(), exploded, 10)
