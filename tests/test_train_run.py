"""End to end through ``trainlab train``/``eval``: run directory, reproducibility, resume."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file

from core_support import SYNTH, needs_fmnist
from trainlab import create_model
from trainlab.cli.main import main
from trainlab.tracking.jsonl import read_metrics
from trainlab.train.checkpoint import resolve_checkpoint


def train(recipe: Path, run: Path, *overrides: str) -> dict:
    code = main(["train", str(recipe), *overrides, "--run-dir", str(run), "--no-progress"])
    assert code == 0
    return json.loads((run / "summary.json").read_text())


def final_weights(run: Path, kind: str = "model") -> dict[str, torch.Tensor]:
    return load_file(str(resolve_checkpoint(run, "latest") / f"{kind}.safetensors"))


def assert_same_weights(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_run_directory_contents_and_eval(recipe, tmp_path, capsys) -> None:
    run = tmp_path / "run"
    summary = train(recipe(SYNTH), run, "train.epochs=3", "train.tensorboard=true",
                    "train.report=true")  # fmt: skip
    out = capsys.readouterr().out
    assert out.strip().splitlines()[-1] == f"run: {run}"
    assert list((run / "tb").glob("events.out.tfevents.*"))
    assert "<html" in (run / "report.html").read_text()[:200].lower()
    for name in ("config.yaml", "env.json", "metrics.jsonl", "summary.json", "checkpoints"):
        assert (run / name).exists(), name
    env = json.loads((run / "env.json").read_text())
    assert {"python", "torch", "device", "cpu_capability", "git_commit", "git_dirty"} <= env.keys()
    data = json.loads((run / "data.json").read_text())  # split sizes, train-split statistics
    assert data["sizes"] == {"train": 192, "val": 48, "test": 48}
    assert len(data["mean"]) == len(data["std"]) == 1 and data["std"][0] > 0
    records = read_metrics(run / "metrics.jsonl")
    keys = set().union(*records)
    assert {"train/loss", "val/loss", "val/acc", "val/f1", "step", "epoch"} <= keys
    assert [r["epoch"] for r in records if "val/acc" in r] == [1, 2, 3]
    assert summary["epochs"] == 3 and summary["test"]["test/acc"] > 0.5
    # The resolved config spells out defaults and reproduces the run.
    cfg = yaml.safe_load((run / "config.yaml").read_text())
    assert cfg["model"]["num_classes"] == 3 and cfg["model"]["act"] == "relu"
    # eval reloads the best checkpoint and reproduces the saved test metrics.
    assert main(["eval", str(run), "--json"]) == 0
    printed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert printed["test/acc"] == summary["test"]["test/acc"]
    assert printed["test/loss"] == pytest.approx(summary["test"]["test/loss"], rel=1e-6)
    assert len(printed["test/confusion"]) == 3
    # Overrides change how the saved run is evaluated (here: flip TTA), and are recorded.
    assert main(["eval", str(run), "--json", "task.tta=flip"]) == 0
    tta = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert tta["overrides"] == ["task.tta=flip"]
    assert tta["test/loss"] != pytest.approx(summary["test"]["test/loss"], rel=1e-6)
    assert json.loads((run / "eval_test.json").read_text())["overrides"] == ["task.tta=flip"]
    assert main(["eval", str(run), "task.tta=spin"]) == 2  # one clear line, exit 2
    assert "task.tta: 'spin'" in capsys.readouterr().err


def test_same_seed_same_weights_and_saved_config_reproduces(recipe, tmp_path) -> None:
    path = recipe(SYNTH)
    train(path, tmp_path / "a")
    train(tmp_path / "a" / "config.yaml", tmp_path / "b")
    assert_same_weights(final_weights(tmp_path / "a"), final_weights(tmp_path / "b"))
    train(path, tmp_path / "c", "seed=1")
    c = final_weights(tmp_path / "c")
    assert any(not torch.equal(v, c[k]) for k, v in final_weights(tmp_path / "a").items())


RESUMABLE = SYNTH.replace(
    "model: {name: mlp, hidden: [32]}", "model: {name: mlp, hidden: [32], dropout: 0.2}"
) + (
    "sched: {name: onecycle}\ncallbacks: [{name: early_stopping, monitor: val/loss, patience: 5}]\n"
)


@pytest.mark.parametrize("stop_at", [12, 9])  # 6 steps per epoch: an epoch boundary, mid-epoch
def test_resume_equals_uninterrupted_run(recipe, tmp_path, stop_at: int) -> None:
    path = recipe(RESUMABLE)
    full = train(path, tmp_path / "full", "train.epochs=4", "train.ema_decay=0.8")
    part = tmp_path / "part"
    train(path, part, "train.epochs=4", f"train.max_steps={stop_at}", "train.ema_decay=0.8")
    payload = torch.load(resolve_checkpoint(part) / "state.pt", weights_only=True)
    assert payload["position"]["step"] == stop_at
    code = main(["train", "--resume", str(part), "train.max_steps=null", "--no-progress"])
    assert code == 0
    resumed = json.loads((part / "summary.json").read_text())
    assert resumed["steps"] == full["steps"] == 24
    assert_same_weights(final_weights(tmp_path / "full"), final_weights(part))
    assert_same_weights(final_weights(tmp_path / "full", "ema"), final_weights(part, "ema"))
    assert resumed["test"] == full["test"]


def test_checkpoints_pruned_but_best_kept(recipe, tmp_path) -> None:
    run = tmp_path / "run"
    train(
        recipe(SYNTH),
        run,
        "train.epochs=5",
        "train.monitor=val/loss",
        "train.monitor_mode=min",
        "optim.lr=5.0",
    )  # diverging LR: the best epoch is an early one
    ckpts = run / "checkpoints"
    kept = sorted(p.name for p in ckpts.glob("step-*"))
    best = (ckpts / "best").read_text().strip()
    latest = (ckpts / "latest").read_text().strip()
    assert latest == "step-00000030" and best in kept
    assert len(kept) <= 3 and not list(ckpts.glob(".tmp-*"))


@needs_fmnist
def test_real_fashion_mnist_slice(tmp_path) -> None:
    recipe = Path(__file__).parents[1] / "recipes" / "fashion_mnist.yaml"
    summary = train(
        recipe,
        tmp_path / "run",
        "train.epochs=2",
        "data.subset=2000",
        "data.batch_size=50",
        "data.test_subset=500",
        "model.widths=[8,16,32]",
        "train.precision=fp32",
    )
    assert summary["test"]["test/acc"] > 0.6  # 10 classes: chance is 0.1
    cfg = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    assert cfg["data"]["subset"] == 2000 and cfg["model"]["in_channels"] == 1


def test_ema_weights_are_evaluated_and_tested(recipe, tmp_path, capsys) -> None:
    run = tmp_path / "run"
    summary = train(recipe(SYNTH), run, "train.ema_decay=0.5", "train.epochs=3")
    ema = final_weights(run, "ema")
    raw = final_weights(run)
    assert int(ema["n_averaged"]) == summary["steps"]
    w = "net.4.weight"
    assert not torch.equal(ema[f"module.{w}"], raw[w])  # an average, not a copy
    capsys.readouterr()
    assert main(["eval", str(run), "--json"]) == 0
    printed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert printed["test/loss"] == pytest.approx(summary["test"]["test/loss"], rel=1e-6)


@pytest.mark.slow  # two process start-ups and a real signal: ~15 s on a busy 2-core machine
def test_sigterm_checkpoints_and_resume_is_exact(recipe, tmp_path) -> None:
    """A real process gets SIGTERM mid-run, exits 143 after checkpointing, resumes exactly."""
    import signal
    import subprocess
    import sys
    import time

    exe = str(Path(sys.executable).with_name("trainlab"))
    path = recipe(RESUMABLE.replace("n_train: 192", "n_train: 3200"))
    full = tmp_path / "full"
    train(path, full, "train.epochs=3", "train.threads=1")
    part = tmp_path / "part"
    proc = subprocess.Popen([exe, "train", str(path), "--run-dir", str(part), "--no-progress",
                             "train.epochs=3", "train.threads=1"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not (part / "metrics.jsonl").is_file():
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    if proc.returncode == 0:
        pytest.skip("the run finished before the signal arrived")
    assert proc.returncode == 143, err
    assert "stopped by SIGTERM" in err and "--resume" in err
    assert not (part / "summary.json").exists()
    assert main(["train", "--resume", str(part), "--no-progress"]) == 0
    assert_same_weights(final_weights(full), final_weights(part))


@pytest.mark.slow  # ten process start-ups
def test_sigkill_battery_latest_checkpoint_always_loads(recipe, tmp_path) -> None:
    """SIGKILL at random moments (checkpoints are written every step): each time the latest
    checkpoint loads, and the run finally resumed to the end equals an uninterrupted one."""
    import random
    import subprocess
    import sys
    import time

    from trainlab.train.checkpoint import load_checkpoint

    exe = str(Path(sys.executable).with_name("trainlab"))
    text = RESUMABLE.replace("n_train: 192", "n_train: 2400")
    path = recipe(text)
    opts = ["train.epochs=3", "train.threads=1", "train.checkpoint_every_steps=1"]
    full = tmp_path / "full"
    train(path, full, *opts)
    part = tmp_path / "part"
    rng = random.Random(0)
    kills = 0
    for attempt in range(10):
        cmd = [exe, "train", "--no-progress"]
        cmd += ["--resume", str(part)] if attempt else [str(path), "--run-dir", str(part), *opts]
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        ckpts = part / "checkpoints"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (ckpts / "latest").is_file():
            time.sleep(0.02)
        time.sleep(rng.uniform(0.0, 0.6))
        proc.kill()
        proc.wait()
        kills += proc.returncode == -9
        latest = resolve_checkpoint(part)  # always a complete, loadable checkpoint
        payload = load_checkpoint(latest, create_model("mlp", in_features=36, hidden=[32],
                                                       num_classes=3, dropout=0.2))  # fmt: skip
        assert payload["position"]["step"] >= 1
        if (part / "summary.json").exists():
            break
    assert kills >= 5
    if not (part / "summary.json").exists():
        assert main(["train", "--resume", str(part), "--no-progress"]) == 0
    assert_same_weights(final_weights(full), final_weights(part))


def test_checkpoint_of_tied_weights_round_trips(tmp_path) -> None:
    from trainlab.train.checkpoint import load_checkpoint, save_checkpoint

    torch.manual_seed(0)
    model = create_model("transformer_lm")  # embedding and output layer share one tensor
    path = save_checkpoint(tmp_path, "step-00000001", model, {"position": {"step": 1}})
    torch.manual_seed(1)
    other = create_model("transformer_lm")
    assert load_checkpoint(path, other)["position"]["step"] == 1
    for (k, a), b in zip(model.state_dict().items(), other.state_dict().values()):
        assert torch.equal(a, b), k


@pytest.mark.parametrize("mode", ["max", "min"])
def test_best_is_reported_without_checkpoints_too(recipe, tmp_path, mode: str) -> None:
    """``train.checkpoint: false``: summary.json's best comes from the epoch history, the same
    value and epoch the checkpointer reports when it runs (sweeps compare trials by it)."""
    monitor = "val/acc" if mode == "max" else "val/loss"
    args = ("train.epochs=4", f"train.monitor={monitor}", f"train.monitor_mode={mode}")
    kept = train(recipe(SYNTH), tmp_path / "kept", *args)
    bare = train(recipe(SYNTH), tmp_path / "bare", *args, "train.checkpoint=false")
    assert not (tmp_path / "bare" / "checkpoints").exists()
    assert kept["best"]["value"] is not None
    assert bare["best"] == kept["best"]
    values = [r[monitor] for r in bare["history"]]
    assert bare["best"]["value"] == (max(values) if mode == "max" else min(values))
