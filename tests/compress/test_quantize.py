"""``trainlab quantize``: int8 artefacts that load, predict and keep their accuracy."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from trainlab.cli.main import main
from trainlab.compress.quantize import QuantizeError, quantize_run
from trainlab.deploy import dir_digest, load_artefact, load_run
from trainlab.deploy.source import sample_inputs

try:
    import torchao  # noqa: F401

    HAVE_TORCHAO = True
except ImportError:
    HAVE_TORCHAO = False


def test_dynamic_int8_gru_lists_layers_and_predicts(text_run: Path, tmp_path: Path,
                                                    capsys) -> None:  # fmt: skip
    before = dir_digest(text_run)
    out = tmp_path / "q"
    assert main(["quantize", str(text_run), "--mode", "dynamic", "--out", str(out),
                 "--reps", "5"]) == 0  # fmt: skip
    printed = capsys.readouterr().out
    assert "quantized (2): head.1 (Linear), rnn (GRU)" in printed
    assert "left in float (1): embed (Embedding)" in printed
    report = json.loads((out / "quantize.json").read_text())
    fp32, int8 = report["rows"]
    assert fp32["name"] == "float32" and int8["name"] == "int8 dynamic"
    assert abs(int8["acc"] - fp32["acc"]) <= 0.05  # 60 test reviews: ≤ 3 change class
    assert all(r["latency_ms"] > 0 and r["throughput"] > 0 and r["bytes"] > 0 for r in
               report["rows"])  # fmt: skip
    art = load_artefact(report["artefact"])  # TorchScript, batch 1, with the input spec
    assert art.meta["quantized"] == "int8 dynamic" and art.meta["kind"] == "text"
    run = load_run(text_run)
    xs, _ = sample_inputs(run, 4)
    with torch.no_grad():
        ref = run.model(xs[:1]).numpy()
    assert np.abs(art.run(xs[:1].numpy()) - ref).max() < 0.1  # int8 rounding, same function
    assert dir_digest(text_run) == before


def test_dynamic_int8_of_a_table_mlp(table_run: Path, tmp_path: Path) -> None:
    report = quantize_run(table_run, "dynamic", tmp_path / "q", reps=5)
    linears = [n for n, m in load_run(table_run).model.named_modules()
               if isinstance(m, torch.nn.Linear)]  # fmt: skip
    assert report["quantized"] == [f"{n} (Linear)" for n in sorted(linears)]
    assert len(linears) == 2
    assert report["left_float"] == []
    fp32, int8 = report["rows"]
    assert abs(int8["acc"] - fp32["acc"]) <= 0.05


@pytest.mark.skipif(not HAVE_TORCHAO, reason="torchao not installable here (extra 'compress')")
def test_static_int8_pt2e_calibrated_and_loadable(digits_run: Path, tmp_path: Path) -> None:
    before = dir_digest(digits_run)
    report = quantize_run(digits_run, "static", tmp_path / "q", compile=False,
                          calib_batches=2, reps=2)  # fmt: skip
    assert len(report["quantized"]) == 8 and all(
        q.endswith("(Conv2d)") or q.endswith("(Linear)") for q in report["quantized"]
    )
    assert report["left_float"] == []  # batch norms are folded into the convolutions
    fp32, int8 = report["rows"]
    assert abs(int8["acc"] - fp32["acc"]) <= 0.03
    art = load_artefact(report["artefact"])
    assert art.meta["dynamic_batch"] is True
    run = load_run(digits_run)
    xs, _ = sample_inputs(run, 64)
    with torch.no_grad():
        ref = run.model(xs).argmax(-1).numpy()
    got = art.run(xs.numpy()).argmax(-1)
    assert (got == ref).mean() >= 0.9  # int8 changes at most a few borderline classes
    assert dir_digest(digits_run) == before


def test_bad_requests_are_one_line(digits_run: Path, tmp_path: Path, capsys) -> None:
    full = tmp_path / "full"
    full.mkdir()
    (full / "x").write_text("keep")
    assert main(["quantize", str(digits_run), "--out", str(full)]) == 2
    assert "already exists" in capsys.readouterr().err
    assert main(["quantize", str(digits_run), "--out", str(digits_run / "q")]) == 2
    assert "never modified" in capsys.readouterr().err
    with pytest.raises(QuantizeError, match="valid: dynamic, static"):
        quantize_run(digits_run, "int4", tmp_path / "x")


@pytest.mark.slow  # torchao's QAT prepare/convert trace ~170 pattern graphs: 30-80 s here
@pytest.mark.skipif(not HAVE_TORCHAO, reason="torchao not installable here (extra 'compress')")
def test_qat_fine_tunes_as_an_ordinary_run_then_converts(digits_run: Path, tmp_path: Path) -> None:
    import yaml

    before = dir_digest(digits_run)
    report = quantize_run(digits_run, "qat", tmp_path / "q", compile=False, reps=2,
                          finetune_epochs=1)  # fmt: skip
    qat_run = Path(report["qat_run"])
    cfg = yaml.safe_load((qat_run / "config.yaml").read_text())
    assert cfg["model"]["qat"] is True and cfg["train"]["precision"] == "fp32"
    assert cfg["model"]["init_from"] == str(digits_run.resolve())
    tuned = load_run(qat_run)  # reloads as any run: the fake-quantised graph + its weights
    xs, _ = sample_inputs(tuned, 64)
    with torch.no_grad():
        fake = tuned.model(xs).argmax(-1).numpy()
    real = load_artefact(report["artefact"]).run(xs.numpy()).argmax(-1)
    assert (fake == real).mean() >= 0.95  # fake quantisation predicts the int8 model
    assert len(report["quantized"]) == 8 and report["left_float"] == []
    assert report["rows"][-1]["name"] == "int8 qat"
    assert dir_digest(digits_run) == before


def test_qat_needs_fp32(digits_run: Path, tmp_path: Path, capsys) -> None:
    recipe = tmp_path / "r.yaml"
    recipe.write_text((digits_run / "config.yaml").read_text())
    assert main(["train", str(recipe), "model.qat=true", "train.precision=bf16",
                 "--run-dir", str(tmp_path / "r"), "--no-progress"]) == 2  # fmt: skip
    assert "model.qat: quantization-aware training needs train.precision: fp32" in (
        capsys.readouterr().err)
    assert not (tmp_path / "r").exists()
