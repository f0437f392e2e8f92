"""``trainlab quantize --mode onnx``: static int8 in onnxruntime, with the export's metadata."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from after_training_support import digits_run  # noqa: F401 - fixture
from trainlab.cli.main import main
from trainlab.deploy import dir_digest, load_artefact, load_run
from trainlab.deploy.source import sample_inputs

pytest.importorskip("onnxruntime", reason="--mode onnx needs onnxruntime (trainlab[deploy])")


def test_onnx_int8_keeps_accuracy_and_predicts(digits_run: Path, tmp_path: Path,  # noqa: F811
                                               capsys) -> None:  # fmt: skip
    before = dir_digest(digits_run)
    out = tmp_path / "q"
    assert main(["quantize", str(digits_run), "--mode", "onnx", "--out", str(out),
                 "--calib-batches", "4", "--reps", "5"]) == 0  # fmt: skip
    printed = capsys.readouterr().out
    assert "(Conv)" in printed.split("quantized (")[1].splitlines()[0]
    report = json.loads((out / "quantize.json").read_text())
    eager, ort32, int8 = report["rows"]
    assert [eager["name"], ort32["name"], int8["name"]] == ["float32", "float32 onnxruntime",
                                                            "int8 onnx"]  # fmt: skip
    assert ort32["acc"] == pytest.approx(eager["acc"], abs=1e-9)
    assert abs(int8["acc"] - eager["acc"]) <= 0.03  # 270 test digits: ≤ 8 change class
    assert int8["bytes"] < ort32["bytes"]  # int8 weights (a tiny model: the graph weighs too)
    art = load_artefact(report["artefact"])  # what `trainlab predict` opens
    assert art.meta["quantized"].startswith("int8 onnx") and art.meta["classes"]
    run = load_run(digits_run)
    xs, _ = sample_inputs(run, 64)
    ref = run.model(xs).detach().numpy()
    got = art.run(xs.numpy())
    assert got.shape == ref.shape and np.mean(got.argmax(1) == ref.argmax(1)) >= 0.9
    assert dir_digest(digits_run) == before  # the source run is only read
