"""Data-parallel training with real torchrun processes (gloo, loopback)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from core_support import SYNTH
from trainlab.cli.main import main
from trainlab.train.checkpoint import resolve_checkpoint

# No dropout, no batch norm: per-rank randomness and batch statistics would differ by design.
DDP_RECIPE = SYNTH + "callbacks: [{name: early_stopping, monitor: val/loss, patience: 9}]\n"


@pytest.mark.slow  # three process start-ups
def test_two_processes_match_one_with_the_same_global_batch(recipe, tmp_path, capsys) -> None:
    path = recipe(DDP_RECIPE)
    one, two = tmp_path / "one", tmp_path / "two"
    assert main(["train", str(path), "--run-dir", str(one), "--no-progress"]) == 0
    code = main(["train", str(path), "--nproc", "2", "--run-dir", str(two), "--no-progress"])
    assert code == 0
    a = load_file(str(resolve_checkpoint(one) / "model.safetensors"))
    b = load_file(str(resolve_checkpoint(two) / "model.safetensors"))
    for k in a:
        # Same steps; only the order of floating-point sums differs (gradient all-reduce).
        torch.testing.assert_close(a[k], b[k], rtol=1e-4, atol=1e-5)
    s1 = json.loads((one / "summary.json").read_text())
    s2 = json.loads((two / "summary.json").read_text())
    assert s1["steps"] == s2["steps"]
    # Validation metrics are reduced over both ranks' halves of each batch.
    assert s2["final"]["val/acc"] == pytest.approx(s1["final"]["val/acc"], abs=1e-6)
    assert s2["test"]["test/loss"] == pytest.approx(s1["test"]["test/loss"], rel=1e-4)
    assert not list(tmp_path.glob("two/*/metrics.jsonl"))  # only rank 0 wrote, in one place


def _children(pid: int) -> list[int]:
    kids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:  # field 4 of /proc/PID/stat: the parent's pid
            kids.append(int(stat.parent.name))
    return kids


def _rank_of(pid: int) -> int | None:
    try:
        env = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return None
    ranks = [e[5:] for e in env if e.startswith(b"RANK=")]
    return int(ranks[0]) if ranks else None


def _torchrun(*train_args: str) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node",
            "2", "-m", "trainlab", "train", "--no-progress", *train_args]  # fmt: skip


@pytest.mark.slow  # four process start-ups and a few hundred gloo steps
def test_sigterm_to_one_rank_stops_all_at_the_same_step_and_resumes_exactly(
    recipe, tmp_path
) -> None:
    path = recipe(DDP_RECIPE.replace("epochs: 2", "epochs: 40"))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    full, cut = tmp_path / "full", tmp_path / "cut"
    done = subprocess.run(_torchrun(str(path), "--run-dir", str(full)), env=env,
                          capture_output=True)  # fmt: skip
    assert done.returncode == 0, done.stdout.decode()[-2000:]
    log = (tmp_path / "cut.log").open("wb")
    proc = subprocess.Popen(_torchrun(str(path), "--run-dir", str(cut)), env=env, stdout=log,
                            stderr=subprocess.STDOUT)  # fmt: skip
    deadline = time.monotonic() + 60
    while (
        not (cut / "metrics.jsonl").is_file()
        or len((cut / "metrics.jsonl").read_text().splitlines()) < 20
    ):
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.05)
    rank1 = [p for p in _children(proc.pid) if _rank_of(p) == 1]
    assert len(rank1) == 1
    os.kill(rank1[0], signal.SIGTERM)  # rank 0 never sees the signal
    proc.wait(timeout=60)  # no rank may hang in a collective
    out = (tmp_path / "cut.log").read_text()
    assert "stopped with the other ranks" in out or "stopped by SIGTERM" in out
    ckpt = resolve_checkpoint(cut)
    step = torch.load(ckpt / "state.pt", weights_only=True)["position"]["step"]
    assert 0 < step < json.loads((full / "summary.json").read_text())["steps"]
    resumed = subprocess.run(_torchrun("--resume", str(cut)), env=env,
                             capture_output=True)  # fmt: skip
    assert resumed.returncode == 0, resumed.stdout.decode()[-2000:]
    a = load_file(str(resolve_checkpoint(full) / "model.safetensors"))
    b = load_file(str(resolve_checkpoint(cut) / "model.safetensors"))
    assert all(torch.equal(a[k], b[k]) for k in a)  # bit for bit across ranks and the stop
