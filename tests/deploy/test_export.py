"""``trainlab export``: artefacts carry their input spec and agree with PyTorch."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from trainlab.cli.main import main
from trainlab.deploy import dir_digest, export_run, load_artefact
from trainlab.deploy.export import ExportError, _export_program
from trainlab.deploy.source import load_run, sample_inputs

try:
    import onnx  # noqa: F401
    import onnxruntime  # noqa: F401
    import onnxscript  # noqa: F401

    HAVE_ONNX = True
except ImportError:
    HAVE_ONNX = False
needs_onnx = pytest.mark.skipif(
    not HAVE_ONNX, reason="onnx/onnxscript/onnxruntime not installable here (extra 'deploy')"
)


@needs_onnx
def test_onnx_export_is_verified_in_onnxruntime(digits_run: Path, tmp_path: Path, capsys) -> None:
    before = dir_digest(digits_run)
    out = tmp_path / "digits.onnx"
    assert main(["export", str(digits_run), "--format", "onnx", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "check on 100 test inputs in onnxruntime" in printed and "-> ok" in printed
    report = json.loads(Path(f"{out}.json").read_text())
    check = report["check"]
    assert check["n"] == 100 and check["within_tolerance"] and check["same_classes"]
    assert check["max_abs_diff"] < 1e-3
    # The file itself carries what a user needs: shape, statistics, classes.
    art = load_artefact(out)
    assert art.meta["shape"] == [1, 8, 8] and art.meta["kind"] == "image"
    assert art.meta["classes"] == [str(i) for i in range(10)]
    assert len(art.meta["mean"]) == 1 and art.meta["std"][0] > 0 and art.meta["scale"] == 16.0
    assert art.meta["dynamic_batch"] is False
    assert dir_digest(digits_run) == before  # the source run is never modified


@needs_onnx
def test_dynamic_batch_onnx_runs_any_batch(digits_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "dyn.onnx"
    report = export_run(digits_run, "onnx", out, dynamic_batch=True, n_check=40)
    assert report["check"]["n"] == 40 and report["check"]["same_classes"]
    run = load_run(digits_run)
    xs, _ = sample_inputs(run, 7)
    got = load_artefact(out).run(xs.numpy())
    with torch.no_grad():
        ref = run.model(xs).numpy()
    assert got.shape == (7, 10)
    np.testing.assert_allclose(got, ref, rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize("fmt,suffix", [("pt2", ".pt2"), ("torchscript", ".ts.pt")])
def test_torch_formats_roundtrip(digits_run: Path, tmp_path: Path, fmt: str, suffix: str) -> None:
    out = tmp_path / f"m{suffix}"
    report = export_run(digits_run, fmt, out, dynamic_batch=True, n_check=30)
    assert report["check"]["within_tolerance"] and report["check"]["same_classes"]
    art = load_artefact(out)
    assert art.meta["format"] == fmt and art.meta["shape"] == [1, 8, 8]
    assert art.run(np.zeros((3, 1, 8, 8), np.float32)).shape == (3, 10)


def test_existing_output_and_output_inside_run_are_refused(digits_run: Path, tmp_path: Path
                                                           ) -> None:  # fmt: skip
    out = tmp_path / "m.pt2"
    out.write_text("keep me")
    with pytest.raises(ExportError, match="already exists"):
        export_run(digits_run, "pt2", out)
    assert out.read_text() == "keep me"
    with pytest.raises(ExportError, match="source run directory"):
        export_run(digits_run, "pt2", digits_run / "m.pt2")


def test_run_without_checkpoint_is_one_line_exit_2(digits_run: Path, tmp_path: Path, capsys
                                                   ) -> None:  # fmt: skip
    bare = tmp_path / "bare"
    bare.mkdir()
    (bare / "config.yaml").write_text((digits_run / "config.yaml").read_text())
    assert main(["export", str(bare), "--format", "pt2", "--out", str(tmp_path / "x.pt2")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "checkpoint" in err[0]
    assert main(["export", str(tmp_path / "nothing"), "--format", "pt2"]) == 2
    assert "not a run directory" in capsys.readouterr().err


class _Branchy(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.sum() > 0:  # data-dependent control flow: no single graph describes it
            return x * 2
        return x - 1


def test_untraceable_module_is_named() -> None:
    model = nn.Sequential(nn.Linear(4, 4), nn.Sequential(nn.ReLU(), _Branchy()), nn.Linear(4, 2))
    with pytest.raises(ExportError, match=r"module '1\.1' \(_Branchy\) is not traceable"):
        _export_program(model.eval(), torch.randn(2, 4), dynamic=False)


def test_text_model_packed_sequences(text_run: Path, tmp_path: Path, capsys) -> None:
    """The GRU packs variable-length sequences (data-dependent sizes): torch.export refuses and
    says so in one line; TorchScript's trace at batch 1 works and predicts text lines."""
    assert main(["export", str(text_run), "--format", "pt2", "--out", str(tmp_path / "m.pt2")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "the model's own forward (RecurrentNet) is not traceable" in err[0]
    out = tmp_path / "m.ts.pt"
    report = export_run(text_run, "torchscript", out)
    assert report["check"]["same_classes"] and report["check"]["n"] == 60  # the whole test split
    lines = tmp_path / "t.txt"
    lines.write_text("the film is fast today\n")
    assert main(["predict", str(out), str(lines), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["top"][0]["class"] in {"neg", "pos"}
