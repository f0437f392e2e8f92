"""Memory figures and the batch-size sweep on tiny models (CPU)."""

from __future__ import annotations

import gc
import weakref

import pytest
import torch
from torch import nn

from trainlab.analyze import largest_batch, memory_report, model_target, sweep
from trainlab.analyze.memory import measure_peak, optimizer_state_bytes, saved_tensor_bytes

TINY = {"in_features": 8, "hidden": [16], "num_classes": 3}


def _param_bytes(model: nn.Module) -> int:
    return sum(p.numel() * p.element_size() for p in model.parameters())


def test_sgd_momentum_state_equals_the_weights() -> None:
    target = model_target("mlp", TINY, device="cpu")  # default: SGD, momentum 0.9
    r = memory_report(target, batch=4)
    assert r.params == r.grads == _param_bytes(target.model)
    assert r.optimizer == r.params and r.optimizer_per_weight == 1.0
    assert r.activations > 0 and r.estimated_total > 3 * r.params


def test_adam_state_is_twice_the_weights() -> None:
    target = model_target("mlp", TINY, device="cpu", optim="adam")
    r = memory_report(target, batch=4)
    total, per_weight = optimizer_state_bytes(target.optimizer)
    assert per_weight == 2 * _param_bytes(target.model)  # exp_avg and exp_avg_sq
    assert r.optimizer_per_weight == 2.0
    assert r.optimizer == total >= per_weight  # plus one scalar step counter per tensor


def test_saved_activations_closed_form() -> None:
    lin = nn.Linear(100, 10)
    x = torch.randn(8, 100)
    # addmm keeps its input (8×100 fp32) for the weight gradient; the weight itself is excluded.
    assert saved_tensor_bytes(lambda: lin(x), list(lin.parameters())) == 8 * 100 * 4
    # Two uses of one tensor are one storage.
    assert saved_tensor_bytes(lambda: lin(x) + lin(x), list(lin.parameters())) == 8 * 100 * 4


def test_measured_cpu_peak_sees_an_allocation() -> None:
    size = 32 * 2**20  # bytes

    def step() -> None:
        torch.ones(size // 4)  # written, so its pages are resident

    peak, how = measure_peak(step, torch.device("cpu"))
    assert "cpu" in how
    assert 0.9 * size <= peak <= 4 * size


def test_sweep_rows_are_monotone() -> None:
    target = model_target("mlp", TINY, device="cpu")
    r = sweep(target, [1, 2, 4, 8, 16], min_time=0.0)
    batches = [row.batch for row in r.rows]
    assert batches == [1, 2, 4, 8, 16] and r.stopped == "largest batch size reached"
    memory = [row.memory for row in r.rows]
    assert memory == sorted(memory) and memory[0] < memory[-1]
    assert all(row.infer_per_s > 0 and row.train_per_s > 0 for row in r.rows)
    assert r.largest_fit is None  # no budget given
    d = r.to_dict()
    assert d["rows"][2]["train_per_s"] == pytest.approx(4 / r.rows[2].train_s)


def test_sweep_finds_the_largest_batch_under_a_budget() -> None:
    target = model_target("mlp", TINY, device="cpu")
    two = sweep(target, [1, 2], min_time=0.0).rows
    per_sample = two[1].memory - two[0].memory  # the estimate is affine in the batch
    assert per_sample > 0
    budget = two[0].memory + 36 * per_sample  # batch 37 fits exactly, 38 does not
    r = sweep(target, [1, 2, 4, 8, 16, 32, 64], budget=budget, min_time=0.0)
    assert r.stopped == "memory budget" and r.largest_fit == 37
    assert r.largest_how == "bisected"
    assert [row.batch for row in r.rows] == [1, 2, 4, 8, 16, 32]  # 64 never ran
    assert all(row.memory <= budget for row in r.rows)


def test_sweep_budget_smaller_than_one_sample_and_time_limit() -> None:
    target = model_target("mlp", TINY, device="cpu")
    assert sweep(target, [1, 2], budget=1, min_time=0.0).largest_fit == 0
    r = sweep(target, [1, 2, 4], time_limit=0.0, min_time=0.0)
    assert r.stopped == "time limit" and [row.batch for row in r.rows] == [1]


def test_largest_batch_extrapolated_when_time_runs_out() -> None:
    from trainlab.analyze.sweep import SweepRow, _largest_fit

    target = model_target("mlp", TINY, device="cpu")
    # The sizes run before the time limit: memory 1000 B + 100 B per sample.
    rows = [SweepRow(b, 0.1, 0.1, 1000 + 100 * b, 0) for b in (1, 2)]
    budget = 1000 + 100 * 300
    assert _largest_fit(target, rows, budget, None, 512) == (300, "extrapolated")
    assert _largest_fit(target, rows, budget, None, 256) == (256, "extrapolated")
    assert _largest_fit(target, rows, budget, None, 2) == (2, "at least")
    assert _largest_fit(target, rows, None, None, 512) == (None, "")


def test_largest_batch_bisection() -> None:
    calls: list[int] = []

    def memory_at(b: int) -> int:
        calls.append(b)
        return 1000 + 100 * b

    assert largest_batch(memory_at, 1000 + 100 * 300, 256, 512) == 300
    assert len(calls) <= 8


def _count_and_forget() -> weakref.ref:
    net = nn.Sequential(nn.Linear(100, 10), nn.Sigmoid())  # sigmoid saves its output
    assert saved_tensor_bytes(lambda: net(torch.randn(8, 100)), list(net.parameters())) > 0
    return weakref.ref(net[0].weight)


def test_counting_saved_tensors_leaves_no_graph_alive() -> None:
    weight = _count_and_forget()
    gc.collect()
    assert weight() is None  # no forward graph (and its weights) kept by the counting hooks
