"""``trainlab analyze`` and ``trainlab profile`` through the real entry point."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from trainlab.cli.main import main

SYNTH = """
data: {name: synthetic, num_classes: 3, shape: [1, 8, 8], n_train: 256}
model: {name: mlp, hidden: [16]}
train: {device: cpu, precision: fp32}
"""

FAST = ["--max-batch", "4", "--sweep-seconds", "5", "--device", "cpu"]


def test_analyze_model_name(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "a"
    args = ["analyze", "mlp", "--opt", "hidden=[32]", "--batch", "8", "--out", str(out)]
    args += ["num_classes=10"]  # a model option may also follow as KEY=VALUE
    assert main([*args, *FAST, "--memory-budget", "1GiB"]) == 0
    report = json.loads((out / "analysis.json").read_text())
    assert report["kind"] == "model" and report["input_shapes"] == [[784]]
    params = 784 * 32 + 32 + 32 * 10 + 10
    assert report["layers"]["total_params"] == params
    assert report["flops"]["forward"] == 2 * (784 * 32 + 32 * 10)
    assert report["memory"]["batch"] == 8 and report["memory"]["optimizer"] == 4 * params
    assert [r["batch"] for r in report["sweep"]["rows"]] == [1, 2, 4]
    assert report["sweep"]["largest_fit"] == 4 and report["sweep"]["largest_how"] == "at least"
    assert (out / "sweep.png").stat().st_size > 0 and (out / "layers.txt").is_file()
    printed = capsys.readouterr().out
    assert "FLOPs" in printed and "batch-size sweep" in printed


def test_analyze_recipe(recipe, tmp_path: Path) -> None:
    path = recipe(SYNTH)
    out = tmp_path / "b"
    assert main(["analyze", str(path), "--out", str(out), *FAST, "model.hidden=[16]"]) == 0
    report = json.loads((out / "analysis.json").read_text())
    assert report["kind"] == "recipe" and report["name"] == "recipe"
    assert report["input_shapes"] == [[1, 8, 8]]  # from the recipe's data
    assert report["layers"]["total_params"] == 64 * 16 + 16 + 16 * 3 + 3
    assert report["memory"]["batch"] == 64  # the recipe's batch size
    assert report["memory"]["optimizer_per_weight"] == 1.0  # recipe default: SGD, momentum


def test_profile_writes_a_trace(recipe, tmp_path: Path, capsys) -> None:
    path = recipe(SYNTH)
    out = tmp_path / "p"
    assert main(["profile", str(path), "--steps", "3", "--out", str(out)]) == 0
    trace = json.loads((out / "trace.json").read_text())
    names = {e.get("name", "") for e in trace["traceEvents"]}
    assert any(n.startswith("ProfilerStep#") for n in names)
    assert sum(n.startswith("ProfilerStep#") for n in names) == 3
    assert "aten::addmm" in names
    printed = capsys.readouterr().out
    assert "3 steps" in printed and "aten::" in printed


@pytest.mark.parametrize(
    "args, message",
    [
        (["analyze", "resnet181"], "unknown model 'resnet181'"),
        (["analyze", "mlp", "--opt", "widht=3"], "widht"),
        (["analyze", "mlp", "--memory-budget", "lots"], "--memory-budget 'lots'"),
        (["analyze", "missing.yaml"], "missing.yaml: recipe file not found"),
        (["profile", "missing.yaml"], "missing.yaml: recipe file not found"),
    ],
)
def test_user_errors_are_one_line(args: list[str], message: str, capsys) -> None:
    assert main(args) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
