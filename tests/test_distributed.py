"""Data-parallel training with real torchrun processes (gloo, loopback)."""

from __future__ import annotations

import json

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
