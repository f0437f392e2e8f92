"""The batch-size finder: the largest size within a budget, measured like `trainlab analyze`,
and the learning-rate rules."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from trainlab.cli.main import main
from trainlab.studies.batch_size import find_batch_size, scaled_lr

DIGITS = """
name: digits_bs
seed: 0
data: {name: digits, batch_size: 32}
model: {name: mlp, hidden: [256, 256]}
optim: {name: sgd, lr: 0.05, momentum: 0.9}
train: {precision: fp32, threads: 1}
"""


def test_largest_batch_within_the_budget(recipe, tmp_path: Path) -> None:
    unbounded = find_batch_size(recipe(DIGITS), memory=64.0, max_batch=256, min_time=0.0,
                                out=tmp_path / "a")  # fmt: skip
    assert unbounded.largest == 256 and unbounded.largest_how == "at least"
    mem = {r["batch"]: r["memory"] for r in unbounded.rows}
    assert [r["batch"] for r in unbounded.rows] == [1, 2, 4, 8, 16, 32, 64, 128, 256]
    assert all(mem[b] < mem[2 * b] for b in (1, 4, 16, 64))  # activations grow with the batch
    # A budget between the memory of batch 64 and 128 must stop there.
    budget = (mem[64] + mem[128]) / 2
    res = find_batch_size(recipe(DIGITS), memory=budget / 2**30, max_batch=256, min_time=0.0,
                          out=tmp_path / "b")  # fmt: skip
    assert 64 <= res.largest < 128 and res.stopped == "memory budget"
    assert all(r["train_samples_per_s"] > 0 for r in res.rows)
    lin, sq = scaled_lr(0.05, res.largest, 32)
    assert (res.lr_linear, res.lr_sqrt) == (pytest.approx(lin), pytest.approx(sq))
    saved = json.loads((tmp_path / "b" / "batch_size.json").read_text())
    assert saved["largest"] == res.largest and saved["recipe_batch"] == 32


def test_sizes_stop_at_the_training_split(recipe, tmp_path: Path) -> None:
    res = find_batch_size(recipe(DIGITS), memory=64.0, max_batch=100_000, min_time=0.0,
                          time_limit=5.0, out=tmp_path)  # fmt: skip
    assert max(r["batch"] for r in res.rows) <= 1257  # digits: 1257 training samples
    assert any("capped" in n for n in res.notes)


def test_rules() -> None:
    assert scaled_lr(0.1, 1024, 256) == (pytest.approx(0.4), pytest.approx(0.2))
    assert scaled_lr(0.1, 64, 256) == (pytest.approx(0.025), pytest.approx(0.05))


def test_bad_budget_is_one_line_exit_2(recipe, capsys) -> None:
    assert main(["batch-size", str(recipe(DIGITS)), "--memory", "-1"]) == 2
    err = capsys.readouterr().err.strip()
    assert "--memory" in err and len(err.splitlines()) == 1
