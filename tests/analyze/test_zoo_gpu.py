"""``analyze`` on every kind of model the zoo holds, and the CUDA path where a GPU exists."""

from __future__ import annotations

import pytest
import torch

from trainlab.analyze import AnalyzeOptions, analyze, model_target, sweep
from trainlab.models import list_models

NO_SWEEP = AnalyzeOptions(batch=2, sweep=False)
# One of each input/output kind: tuple outputs (VAE), token ids (LM), an RNN, two inputs
# (seq2seq: source and target tokens), a CNN with an image input.
KINDS = ["vae", "transformer_lm", "lstm", "seq2seq", "lenet5"]


def _check(name: str) -> None:
    target = model_target(name, device="cpu")
    r = analyze(target, NO_SWEEP)
    assert r.layers.total_params == sum(p.numel() for p in target.model.parameters())
    assert r.flops.forward > 0 and r.flops.train > r.flops.forward
    assert r.memory.grads > 0 and r.memory.activations > 0 and r.memory.optimizer > 0


@pytest.mark.parametrize("name", KINDS)
def test_analyze_each_kind_of_model(name: str) -> None:
    _check(name)
    if name == "lstm":  # flop_counter has no formula for fused RNN kernels: say so
        notes = analyze(model_target(name, device="cpu"), NO_SWEEP).notes
        assert any("lower bound" in n for n in notes)


@pytest.mark.slow
@pytest.mark.parametrize("name", [n for n in list_models() if n not in KINDS])
def test_analyze_every_registered_model(name: str) -> None:
    _check(name)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_sweep_measures_peak_memory_and_finds_the_budget() -> None:
    target = model_target("mlp", {"in_features": 256, "hidden": [512]}, device="cuda")
    rows = sweep(target, [64, 128], min_time=0.0).rows
    assert all(r.memory == r.measured > 0 for r in rows)
    budget = rows[0].memory + (rows[1].memory - rows[0].memory) * 3  # about batch 256
    r = sweep(target, [64, 128, 256, 512, 1024], budget=budget, min_time=0.0)
    assert r.stopped == "memory budget" and r.largest_how == "bisected"
    assert 128 <= r.largest_fit < 512
