"""Exported files and run directories behind one interface: ``meta`` (the input spec) and
``run(x) -> logits`` on NumPy arrays."""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from trainlab.errors import TrainlabError

__all__ = ["Artefact", "load_artefact", "open_model"]

META = "trainlab.json"


@dataclass
class Artefact:
    """A model ready to run: ``meta`` (shape, statistics, classes…) and ``run``."""

    meta: dict[str, Any]
    run: Callable[[np.ndarray], np.ndarray]
    runtime: str


def _onnx(path: Path) -> Artefact:
    try:
        import onnx
        import onnxruntime as ort
    except ImportError as e:
        raise TrainlabError(f"{path}: running ONNX needs {e.name}: pip install "
                            "'trainlab[deploy]'") from None  # fmt: skip
    props = {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}
    if "trainlab" not in props:
        raise TrainlabError(f"{path}: no trainlab metadata (not written by trainlab export)")
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = torch.get_num_threads()
    opts.inter_op_num_threads = 1
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name

    def run(x: np.ndarray) -> np.ndarray:
        return sess.run(None, {name: np.ascontiguousarray(x)})[0]

    return Artefact(json.loads(props["trainlab"]), run, f"onnxruntime {ort.__version__}")


def _torch_run(module: Any) -> Callable[[np.ndarray], np.ndarray]:
    def run(x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return module(torch.from_numpy(np.ascontiguousarray(x))).numpy()

    return run


def _pt2(path: Path) -> Artefact:
    # int8 programs (trainlab quantize --mode static) use the quantized_decomposed operators,
    # which must be registered before a program naming them can be loaded.
    import torch.ao.quantization.fx._decomposed  # noqa: F401

    extra = {META: ""}
    program = torch.export.load(str(path), extra_files=extra)
    return Artefact(json.loads(extra[META]), _torch_run(program.module()), "torch.export")


def _torchscript(path: Path) -> Artefact:
    extra = {META: ""}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TorchScript's deprecation notice
        module = torch.jit.load(str(path), map_location="cpu", _extra_files=extra)
    if not extra[META]:
        raise TrainlabError(f"{path}: no trainlab metadata (not written by trainlab export)")
    return Artefact(json.loads(extra[META]), _torch_run(module.eval()), "torchscript")


def load_artefact(path: str | Path) -> Artefact:
    """Open a file written by ``trainlab export`` (``.onnx``, ``.pt2``, ``.ts.pt``/``.pt``).

    >>> art = load_artefact("exports/fmnist.onnx")             # doctest: +SKIP
    >>> art.run(np.zeros((1, 1, 28, 28), np.float32)).shape   # doctest: +SKIP
    (1, 10)
    """
    p = Path(path)
    if not p.is_file():
        raise TrainlabError(f"{p}: no such file")
    loaders = {".onnx": _onnx, ".pt2": _pt2, ".pt": _torchscript}
    loader = loaders.get(p.suffix)
    if loader is None:
        raise TrainlabError(f"{p}: not an exported model (.onnx, .pt2, .ts.pt)")
    try:
        return loader(p)
    except TrainlabError:
        raise
    except Exception as e:  # a corrupt or foreign file: many error types, one meaning
        first = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
        raise TrainlabError(f"{p}: cannot load the exported model ({first})") from None


def open_model(source: str | Path) -> Artefact:
    """A run directory (best checkpoint, PyTorch) or an exported file, as an :class:`Artefact`."""
    p = Path(source)
    if p.is_dir():
        from trainlab.deploy.source import load_run

        run = load_run(p)
        return Artefact(run.spec, _torch_run(run.model), f"torch {torch.__version__}")
    return load_artefact(p)
