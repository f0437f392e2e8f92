"""``trainlab export RUN --format onnx|pt2|torchscript``: one file with the model and what it
needs to be used (input shape, normalisation statistics, class names, vocabulary), checked.

The metadata travel inside the file (ONNX ``metadata_props["trainlab"]``, an ``extra_files``
entry ``trainlab.json`` for pt2 and TorchScript) and in ``<file>.json`` beside it, together with
the verification: the artefact is run on 100 test inputs (ONNX in onnxruntime) and its outputs
compared with PyTorch's (``allclose`` within the tolerances, identical predicted classes).
"""

from __future__ import annotations

import contextlib
import io
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from trainlab.deploy.source import LoadedRun, load_run, sample_inputs
from trainlab.errors import TrainlabError

__all__ = ["ExportError", "export_run", "FORMATS", "RTOL", "ATOL", "compare_outputs"]

FORMATS = {"onnx": ".onnx", "pt2": ".pt2", "torchscript": ".ts.pt"}
RTOL, ATOL = 1e-3, 1e-4  # float32 kernels differ between runtimes by ~1e-6 relative
META_KEY = "trainlab"  # ONNX metadata_props key / extra_files name stem


class ExportError(TrainlabError):
    """The model cannot be exported (untraceable module), or the artefact failed its check."""


def compare_outputs(ref: np.ndarray, got: np.ndarray) -> dict[str, Any]:
    """Max absolute difference, ``allclose`` at (RTOL, ATOL), and whether argmax agrees."""
    ref, got = np.asarray(ref, np.float32), np.asarray(got, np.float32)
    same = ref.shape == got.shape
    return {
        "n": int(ref.shape[0]),
        "max_abs_diff": float(np.abs(ref - got).max()) if same else None,
        "rtol": RTOL,
        "atol": ATOL,
        "within_tolerance": bool(same and np.allclose(got, ref, rtol=RTOL, atol=ATOL)),
        "same_classes": bool(same and (ref.argmax(-1) == got.argmax(-1)).all()),
    }


def _record_inputs(model: nn.Module, x: torch.Tensor) -> dict[str, tuple[Any, ...]]:
    """The positional inputs each submodule received in one forward pass (first call only)."""
    seen: dict[str, tuple[Any, ...]] = {}
    hooks = []
    for name, mod in model.named_modules():
        def hook(m: nn.Module, args: tuple[Any, ...], name: str = name) -> None:
            seen.setdefault(name, args)

        hooks.append(mod.register_forward_pre_hook(hook))
    try:
        with torch.no_grad():
            model(x)
    finally:
        for h in hooks:
            h.remove()
    return seen


def _blame(model: nn.Module, x: torch.Tensor) -> tuple[str, str]:
    """The innermost module whose own forward cannot be exported, and the first line of why.

    Walks down from the root: while some child fails on the inputs it received, descend."""
    inputs = _record_inputs(model, x)
    name, mod, reason = "", model, ""
    while True:
        for child_name, child in mod.named_children():
            full = f"{name}.{child_name}" if name else child_name
            args = inputs.get(full)
            if args is None or not all(isinstance(a, torch.Tensor) for a in args):
                continue
            try:
                torch.export.export(child, args, strict=False)
            except Exception as e:  # any failure: this child is (or holds) the culprit
                name, mod, reason = full, child, _first_line(e)
                break
        else:
            return name or type(model).__name__, reason


def _first_line(e: BaseException) -> str:
    lines = [s.strip() for s in str(e).splitlines() if s.strip()]
    return (lines[0] if lines else type(e).__name__)[:300]


def _export_program(model: nn.Module, x: torch.Tensor, dynamic: bool) -> Any:
    import warnings

    shapes = ({0: torch.export.Dim("batch", min=1, max=65536)},) if dynamic else None
    with warnings.catch_warnings():  # the tracer's advice on attributes: noise for a user
        warnings.simplefilter("ignore")
        try:
            return torch.export.export(model, (x,), dynamic_shapes=shapes, strict=False)
        except Exception as e:
            where, why = _blame(model, x)
            what = (f"module '{where}' ({type(_get(model, where)).__name__})" if "." in where
                    or where in dict(model.named_children()) else
                    f"the model's own forward ({type(model).__name__})")  # fmt: skip
            raise ExportError(f"cannot export the model: {what} is not traceable: "
                              f"{why or _first_line(e)} (try --format torchscript)") from None


def _get(model: nn.Module, name: str) -> nn.Module:
    try:
        return model.get_submodule(name)
    except AttributeError:
        return model


def _write_onnx(model: nn.Module, x: torch.Tensor, path: Path, dynamic: bool, meta: str) -> None:
    import onnx

    program = _export_program(model, x, dynamic)
    with contextlib.redirect_stdout(io.StringIO()):  # the exporter's own progress lines
        onnx_program = torch.onnx.export(program, (x,), dynamo=True, external_data=False,
                                         input_names=["input"], output_names=["logits"])
    if onnx_program is None:  # pragma: no cover - dynamo export always returns a program
        raise ExportError("torch.onnx.export returned nothing")
    proto = onnx_program.model_proto
    onnx.helper.set_model_props(proto, {META_KEY: meta})
    onnx.save_model(proto, str(path))


def _write_pt2(model: nn.Module, x: torch.Tensor, path: Path, dynamic: bool, meta: str) -> None:
    program = _export_program(model, x, dynamic)
    torch.export.save(program, str(path), extra_files={f"{META_KEY}.json": meta})


def _write_torchscript(model: nn.Module, x: torch.Tensor, path: Path, dynamic: bool, meta: str
                       ) -> None:  # fmt: skip
    import warnings

    with warnings.catch_warnings():  # TorchScript is deprecated upstream; still asked for
        warnings.simplefilter("ignore")
        try:
            traced = torch.jit.trace(model, (x,), check_trace=False)
        except Exception as e:
            where, why = _blame(model, x)
            raise ExportError(f"cannot trace the model: module '{where}' is not traceable: "
                              f"{why or _first_line(e)}") from None  # fmt: skip
        torch.jit.save(traced, str(path), _extra_files={f"{META_KEY}.json": meta})


WRITERS = {"onnx": _write_onnx, "pt2": _write_pt2, "torchscript": _write_torchscript}


def _check_module(fmt: str) -> None:
    if fmt not in FORMATS:
        raise ExportError(f"--format {fmt}: unknown format; valid: {', '.join(FORMATS)}")
    if fmt == "onnx":
        try:
            import onnx  # noqa: F401
            import onnxruntime  # noqa: F401
            import onnxscript  # noqa: F401
        except ImportError as e:
            raise ExportError(
                f"--format onnx needs onnx, onnxscript and onnxruntime ({e.name} is missing): "
                "pip install 'trainlab[deploy]'"
            ) from None


def export_run(
    run_dir: str | Path,
    fmt: str = "onnx",
    out: str | Path | None = None,
    *,
    dynamic_batch: bool = False,
    n_check: int = 100,
    force: bool = False,
) -> dict[str, Any]:
    """Export a run's best model to ``out`` and verify it on ``n_check`` test inputs.

    Returns (and writes to ``<out>.json``) the metadata and the check's result. Without
    ``dynamic_batch`` the artefact takes batches of exactly one sample.

    >>> report = export_run("runs/fmnist", "onnx", "model.onnx")  # doctest: +SKIP
    >>> report["check"]["same_classes"]                            # doctest: +SKIP
    True
    """
    _check_module(fmt)
    run = load_run(run_dir)
    path = Path(out) if out is not None else _default_out(run, fmt)
    if path.exists() and not force:
        raise ExportError(f"{path}: already exists (choose another --out, or --force)")
    if path.resolve().is_relative_to(run.run_dir.resolve()):
        raise ExportError(f"{path}: inside the source run directory, which is never modified")
    xs, _ = sample_inputs(run, n_check)
    meta = {**run.spec, "format": fmt, "dynamic_batch": dynamic_batch, "run_dir": str(run.run_dir),
            "input_name": "input", "output_name": "logits"}  # fmt: skip
    path.parent.mkdir(parents=True, exist_ok=True)
    example = xs[:2] if dynamic_batch else xs[:1]
    t0 = time.perf_counter()
    WRITERS[fmt](run.model, example, path, dynamic_batch, json.dumps(meta))
    export_s = time.perf_counter() - t0
    check = verify_artefact(path, run, xs, dynamic_batch)
    report = {**meta, "file": str(path), "bytes": path.stat().st_size,
              "export_s": round(export_s, 2), "check": check}  # fmt: skip
    Path(f"{path}.json").write_text(json.dumps(report, indent=2))
    if not (check["within_tolerance"] and check["same_classes"]):
        raise ExportError(
            f"{path}: the exported model disagrees with PyTorch on {check['n']} test inputs "
            f"(max |diff| {check['max_abs_diff']}, same classes: {check['same_classes']}); "
            f"details in {path}.json"
        )
    return report


def _default_out(run: LoadedRun, fmt: str) -> Path:
    return Path("exports") / f"{run.run_dir.resolve().name}{FORMATS[fmt]}"


def verify_artefact(path: Path, run: LoadedRun, xs: torch.Tensor, dynamic: bool) -> dict[str, Any]:
    """Run the artefact (ONNX in onnxruntime) and PyTorch on ``xs``; compare the outputs."""
    from trainlab.deploy.artefact import load_artefact

    with torch.no_grad():
        ref = run.model(xs).numpy()
    art = load_artefact(path)
    got = art.run(xs.numpy()) if dynamic else np.concatenate(
        [art.run(xs[i : i + 1].numpy()) for i in range(len(xs))]
    )
    return {**compare_outputs(ref, got), "runtime": art.runtime}
