"""``trainlab quantize RUN --mode onnx``: static int8 in ONNX Runtime.

The run's model is exported to ONNX (``trainlab export``'s code, checked in onnxruntime), then
``onnxruntime.quantization.quantize_static`` inserts QuantizeLinear/DequantizeLinear pairs
(QDQ format; int8 weights per output channel, uint8 activations) with activation ranges
calibrated on training batches; onnxruntime runs the pairs around convolutions and matrix
products as int8 kernels. The artefact keeps the export's metadata (input shape, statistics,
classes), so ``trainlab predict`` takes it like any export.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from trainlab.compress.measure import Row, measure, print_table
from trainlab.deploy.source import LoadedRun, sample_inputs
from trainlab.errors import TrainlabError

__all__ = ["quantize_onnx", "quantize_onnx_file"]


def _modules() -> tuple[Any, Any]:
    try:
        import onnx
        import onnxruntime.quantization as ortq
    except ImportError as e:
        raise TrainlabError(f"--mode onnx needs {e.name}: pip install 'trainlab[deploy]'"
                            ) from None  # fmt: skip
    return onnx, ortq


def _calibration(run: LoadedRun, name: str, batches: int) -> Any:
    """Training batches, normalised as in training, as onnxruntime's calibration reader."""
    _, ortq = _modules()

    class Reader(ortq.CalibrationDataReader):  # type: ignore[misc, name-defined]
        def __init__(self) -> None:
            loader = run.exp.data.loader("train")
            self.batches: Iterator[tuple[torch.Tensor, Any]] = iter(
                b for _, b in zip(range(batches), loader.iter_epoch(0), strict=False))

        def get_next(self) -> dict[str, np.ndarray] | None:
            batch = next(self.batches, None)
            return None if batch is None else {name: batch[0].float().contiguous().numpy()}

    return Reader()


def _layers(model: Any) -> tuple[list[str], list[str]]:
    """Nodes fed by a DequantizeLinear (run in int8) and compute nodes left in float."""
    from_dq = {o for n in model.graph.node if n.op_type == "DequantizeLinear" for o in n.output}
    skip = {"QuantizeLinear", "DequantizeLinear", "Constant", "Reshape", "Flatten", "Shape"}
    done, left = [], []
    for n in model.graph.node:
        if n.op_type in skip:
            continue
        (done if any(i in from_dq for i in n.input) else left).append(f"{n.name} ({n.op_type})")
    return done, left


def quantize_onnx(run: LoadedRun, odir: Path, calib_batches: int, reps: int,
                  console: Any = None) -> dict[str, Any]:  # fmt: skip
    """Export, quantize and measure (float32 eager, float32 onnxruntime, int8 onnxruntime);
    writes ``odir/model.int8.onnx`` and ``odir/quantize.json``."""
    from trainlab.deploy import export_run, load_artefact

    odir.mkdir(parents=True, exist_ok=True)
    fp32 = odir / "model.fp32.onnx"
    export_run(run.run_dir, "onnx", fp32, dynamic_batch=True)  # checked in onnxruntime
    path = odir / "model.int8.onnx"
    model = quantize_onnx_file(run, fp32, path, calib_batches)
    done, left = _layers(model)
    rows = _rows(run, fp32, path, reps, load_artefact)
    report = {"mode": "onnx", "artefact": str(path), "quantized": done, "left_float": left,
              "calib_batches": calib_batches, "threads": torch.get_num_threads(),
              "rows": [r.as_dict() for r in rows]}  # fmt: skip
    (odir / "quantize.json").write_text(json.dumps(report, indent=2))
    print_table(f"{run.run_dir.name}: int8 in onnxruntime vs float32 (CPU, "
                f"{torch.get_num_threads()} threads)", rows, console)  # fmt: skip
    return report


def quantize_onnx_file(run: LoadedRun, fp32: Path, path: Path, calib_batches: int) -> Any:
    """``fp32`` (an export of ``run``) as static int8 QDQ in ``path``, calibrated on
    ``calib_batches`` training batches, with the export's metadata; returns the ONNX model."""
    onnx, ortq = _modules()
    name = onnx.load(str(fp32)).graph.input[0].name
    root, level = logging.getLogger(), logging.getLogger().level
    root.setLevel(logging.ERROR)  # its advice to pre-process: shape inference fails on these
    try:
        ortq.quantize_static(
            str(fp32), str(path), _calibration(run, name, calib_batches),
            quant_format=ortq.QuantFormat.QDQ, per_channel=True,
            activation_type=ortq.QuantType.QUInt8, weight_type=ortq.QuantType.QInt8,
        )  # fmt: skip
    finally:
        root.setLevel(level)
    model = onnx.load(str(path))
    meta = json.loads({p.key: p.value for p in onnx.load(str(fp32)).metadata_props}["trainlab"])
    meta["quantized"] = "int8 onnx (static, QDQ)"
    del model.metadata_props[:]
    model.metadata_props.add(key="trainlab", value=json.dumps(meta))
    onnx.save(model, str(path))
    return model


def _rows(run: LoadedRun, fp32: Path, int8: Path, reps: int, load: Any) -> list[Row]:
    xs, _ = sample_inputs(run, 256)
    test = run.exp.data.loader("test")

    def ort(path: Path) -> Any:
        art = load(path)
        return lambda x: torch.from_numpy(art.run(x.float().numpy()))

    return [
        measure("float32", run.model, test, xs, fp32.stat().st_size, "eager PyTorch", reps),
        measure("float32 onnxruntime", ort(fp32), test, xs, fp32.stat().st_size, "", reps),
        measure("int8 onnx", ort(int8), test, xs, int8.stat().st_size, "onnxruntime QDQ", reps),
    ]
